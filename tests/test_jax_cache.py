"""The bgcube command keeps JAX's compiled programs on disk; the library leaves JAX's configuration alone."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bgcube.jax_cache import ENV_VAR, cache_folder


def test_cache_folder_follows_the_environment(tmp_path):
    assert cache_folder({ENV_VAR: str(tmp_path / "c")}) == tmp_path / "c"
    for off in ("off", "0", "No", "false"):
        assert cache_folder({ENV_VAR: off}) is None
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "bgcube" / "jax"
    assert cache_folder({}) == Path.home() / ".cache" / "bgcube" / "jax"


def _run(code, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env.pop(ENV_VAR, None)
    env.update(env_extra)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def test_the_command_cache_is_switched_on_kept_or_off(tmp_path):
    pytest.importorskip("jax")
    code = """
        import jax
        from bgcube.jax_cache import enable_command_cache

        print(enable_command_cache(), jax.config.jax_compilation_cache_dir,
              jax.config.jax_persistent_cache_min_compile_time_secs)
        """
    folder = tmp_path / "cache"
    out = _run(code, **{ENV_VAR: str(folder)})
    assert out == [str(folder), str(folder), "0.0"] and folder.is_dir()
    assert _run(code, **{ENV_VAR: "off"})[:2] == ["None", "None"]
    mine = str(tmp_path / "mine")  # a folder the user gave JAX is kept
    assert _run(code, **{ENV_VAR: str(folder), "JAX_COMPILATION_CACHE_DIR": mine})[:2] == [
        mine,
        mine,
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small simulated data set (two runs)."""
    import astropy.units as u

    from bgcube.simulate.dataset import make_test_dataset

    folder = tmp_path_factory.mktemp("sim") / "dataset"
    make_test_dataset(folder, n_obs=2, random_state=3, background_rate=5 * u.Hz, write_bkg=False)
    return folder


def test_make_models_on_jax_leaves_the_cache_setting_alone(dataset, tmp_path):
    pytest.importorskip("jax")
    out = _run(
        f"""
        import jax
        from bgcube.make.pipeline import make_models

        make_models({str(dataset)!r}, {str(tmp_path / "out")!r}, backend="jax", model="groups",
                    progress=False)
        print(jax.config.jax_compilation_cache_dir)
        """,
        **{ENV_VAR: str(tmp_path / "cache")},
    )
    assert out[-1] == "None" and not (tmp_path / "cache").exists()


def test_the_command_on_jax_fills_its_cache(dataset, tmp_path):
    pytest.importorskip("jax")
    folder = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env[ENV_VAR] = str(folder)
    env["BGCUBE_RUN_CHAIN"] = "device"  # XLA even on a CPU (else the chain runs on NumPy)
    args = ["make-models", str(dataset), str(tmp_path / "out"), "--model", "groups"]
    args += ["--backend", "jax", "--no-progress"]
    result = subprocess.run(
        [sys.executable, "-m", "bgcube", *args], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert any(folder.iterdir())  # compiled programs were written there


def test_the_command_gives_jax_lapack_one_thread_unless_the_user_chose():
    pytest.importorskip("jax")
    pytest.importorskip("scipy")
    code = """
        import jax
        from threadpoolctl import ThreadpoolController
        from bgcube.jax_cache import limit_command_lapack

        before = {lib.filepath for lib in ThreadpoolController().lib_controllers}
        n = limit_command_lapack()
        new = [lib for lib in ThreadpoolController().lib_controllers
               if lib.filepath not in before and lib.user_api == "blas"]
        print(n, len(new), all(lib.num_threads == 1 for lib in new))
        """
    n, n_new, one = _run(code, JAX_PLATFORMS="cpu")
    assert n == n_new and one == "True"
    assert _run(code, JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="2")[0] == "0"

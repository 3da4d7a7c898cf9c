"""Where a build's per-run chain runs (bgcube.make.chain_backend)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bgcube.make import chain_backend as cb
from bgcube.make.config import BuildConfig


@pytest.fixture
def env(monkeypatch):
    for name in (cb.ENV_VAR, "JAX_PLATFORMS", "JAX_PLATFORM_NAME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_numpy_and_devices_with_an_accelerator_keep_their_chain(env):
    assert cb.chain_backend(None) == cb.chain_backend("numpy") == "numpy"
    assert cb.chain_backend("cupy") == "cupy" and cb.chain_backend("array_api_strict")
    env.setenv(cb.ENV_VAR, "host")
    assert cb.chain_backend("cupy") == "numpy"
    env.setenv(cb.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match=cb.ENV_VAR):
        cb.chain_backend("jax")


def test_jax_runs_its_chain_where_it_has_an_accelerator(env):
    env.setattr(sys, "modules", {k: v for k, v in sys.modules.items() if k != "jax"})
    env.setenv("JAX_PLATFORMS", "cpu")
    assert not cb.accelerator_available("jax") and cb.chain_backend("jax") == "numpy"
    env.setenv(cb.ENV_VAR, "device")
    assert cb.chain_backend("jax") == "jax"  # asked for: XLA even on the CPU
    env.setenv(cb.ENV_VAR, "auto")
    env.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert cb.accelerator_available("jax") and cb.chain_backend("jax") == "jax"
    env.delenv("JAX_PLATFORMS")
    env.setattr(cb, "_JAX_ACCELERATORS", ("numpy",))  # an installed "plugin"
    assert cb.chain_backend("jax") == "jax"
    env.setattr(cb, "_JAX_ACCELERATORS", ("no_such_module_here",))
    assert cb.chain_backend("jax") == "numpy"


def test_an_imported_jax_is_asked(env):
    jax = pytest.importorskip("jax")
    assert cb.accelerator_available("jax") == (jax.default_backend() != "cpu")


def test_only_a_plain_group_build_or_a_joint_build_is_host_only(env):
    env.setenv(cb.ENV_VAR, "host")
    plain = dict(indir="in", outdir="out", model="groups", backend="jax")
    assert cb.host_only(BuildConfig(**plain))
    assert not cb.host_only(BuildConfig(**{**plain, "backend": "numpy"}))
    assert cb.host_only(BuildConfig(**{**plain, "model": "joint"}))  # its fit on the host
    assert cb.fit_backend("jax") == "numpy"
    assert not cb.host_only(BuildConfig(**{**plain, "model_type": "2d"}))
    assert not cb.host_only(BuildConfig(**{**plain, "per_observation": "group"}))
    env.setenv(cb.ENV_VAR, "device")
    assert not cb.host_only(BuildConfig(**plain))
    assert not cb.host_only(BuildConfig(**{**plain, "model": "joint"}))
    assert cb.fit_backend("jax") == "jax"


def _python(code, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in (cb.ENV_VAR, "JAX_PLATFORMS")}
    env.update(env_extra)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    import astropy.units as u

    from bgcube.simulate.dataset import make_test_dataset

    folder = tmp_path_factory.mktemp("sim") / "dataset"
    make_test_dataset(folder, n_obs=3, random_state=4, background_rate=5 * u.Hz, write_bkg=False)
    return folder


def test_the_command_on_a_cpu_jax_builds_on_the_host_without_importing_jax(dataset, tmp_path):
    pytest.importorskip("jax")
    out = _python(
        f"""
        import sys
        from bgcube.cli import main

        for backend in ("numpy", "jax"):
            args = ["make-models", {str(dataset)!r}, {str(tmp_path)!r} + "/" + backend]
            assert main(args + ["--model", "groups", "--backend", backend, "--no-progress"]) == 0
        print("jax-imported" if "jax" in sys.modules else "no-jax")
        """,
        JAX_PLATFORMS="cpu",
    )
    assert out[-1] == "no-jax"
    from astropy.io import fits

    for path in sorted((tmp_path / "numpy").glob("bg_cube_model_*.fits.gz")):
        with fits.open(path) as a, fits.open(tmp_path / "jax" / path.name) as b:
            for hdu_a, hdu_b in zip(a, b, strict=True):
                assert hdu_a.header == hdu_b.header
                if hdu_a.data is not None:
                    assert hdu_a.data.tobytes() == hdu_b.data.tobytes()


def test_models_of_a_host_build_come_back_on_jax_in_float64(dataset, tmp_path, env):
    jax = pytest.importorskip("jax")
    from bgcube.make.pipeline import make_models

    env.setenv(cb.ENV_VAR, "host")
    on_numpy = make_models(dataset, tmp_path / "np", progress=False, model="groups")
    on_jax = make_models(dataset, tmp_path / "jax", progress=False, model="groups", backend="jax")
    rows = on_jax.summary_table()  # reads the shapes without moving anything
    assert isinstance(on_jax.groups[0].__dict__["_model"], cb.DeferredModel)
    assert list(rows["GROUP_ID"]) == [g.group_id for g in on_numpy.groups]
    for a, b in zip(on_numpy.groups, on_jax.groups, strict=True):
        if a.model is None:
            continue
        data = b.model.background_cube.data
        assert isinstance(data, jax.Array) and data.dtype == jax.numpy.float64
        np.testing.assert_array_equal(np.asarray(data), a.model.background_cube.data)
        assert b.model is b.model  # moved once

"""Where the joint build's fit runs with ``backend='jax'`` (bgcube.make.chain_backend)."""

import gzip
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bgcube.fit.joint import JOINT_MODEL_FILE, JointBackgroundModel
from bgcube.make import chain_backend as cb
from bgcube.simulate import make_test_dataset

_DATE = re.compile(rb"DATE    = '[0-9T:-]+'")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(
        tmp_path_factory.mktemp("jointjax") / "data", n_obs=12, random_state=5
    ).path


def _content(path):
    """A file's bytes (inflated when gzipped), the FITS DATE keyword's value blanked."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return _DATE.sub(b"DATE    = ''", data)


def test_cpu_jax_joint_command_fits_on_numpy_without_importing_jax(dataset, tmp_path):
    """Where JAX has no accelerator, the jax build is the NumPy build: same files, no JAX."""
    pytest.importorskip("jax")
    script = textwrap.dedent(
        f"""
        import sys
        from bgcube.cli import main

        for backend in ("numpy", "jax"):
            args = ["make-models", {str(dataset)!r}, {str(tmp_path)!r} + "/" + backend]
            assert main(args + ["--backend", backend, "--no-progress", "--fit-glat-min", "0"]) == 0
        print("jax-imported" if "jax" in sys.modules else "no-jax")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != cb.ENV_VAR}
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-1] == "no-jax"
    on_numpy = sorted(p.relative_to(tmp_path / "numpy") for p in (tmp_path / "numpy").rglob("*"))
    on_jax = sorted(p.relative_to(tmp_path / "jax") for p in (tmp_path / "jax").rglob("*"))
    assert on_numpy == on_jax and len(on_numpy) > 12
    for name in on_numpy:
        a, b = tmp_path / "numpy" / name, tmp_path / "jax" / name
        if name.name == "bgcube-config.yaml":  # the options given: outdir and backend differ
            lines_a, lines_b = a.read_text().splitlines(), b.read_text().splitlines()
            diff = [(x, y) for x, y in zip(lines_a, lines_b, strict=True) if x != y]
            assert [y.split(":")[0].strip() for _, y in diff] == ["outdir", "backend"], diff
        elif a.is_file():
            assert _content(a) == _content(b), name
    model = JointBackgroundModel.read(tmp_path / "jax" / JOINT_MODEL_FILE)
    assert model.meta["BACKEND"] == "numpy"  # where the fit ran


def test_device_keeps_the_joint_fit_on_xla(dataset, tmp_path, monkeypatch):
    """``BGCUBE_RUN_CHAIN=device`` fits on JAX (as on a GPU): the same runs, the same model."""
    pytest.importorskip("jax")
    from bgcube.make import make_models

    monkeypatch.setenv(cb.ENV_VAR, "device")
    options = dict(progress=False, fit_glat_min=0.0)
    on_numpy = make_models(dataset, tmp_path / "numpy", **options).joint.model
    on_jax = make_models(dataset, tmp_path / "jax", backend="jax", **options).joint.model
    assert on_jax.meta["BACKEND"] == "jax" and on_numpy.meta["BACKEND"] == "numpy"
    for name in ("OBS_ID", "NIGHT", "N_COUNTS", "E_THRESHOLD"):  # the runs' cubes: exact
        np.testing.assert_array_equal(on_jax.runs[name], on_numpy.runs[name])
    assert isinstance(on_jax.coef_a, np.ndarray)  # the model is NumPy's on any backend
    np.testing.assert_allclose(on_jax.coef_a, on_numpy.coef_a, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(on_jax.coef_s, on_numpy.coef_s, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(on_jax.runs["N_PREDICTED"], on_numpy.runs["N_PREDICTED"], rtol=1e-8)

"""The joint fit's JAX programs kept on disk by the command (bgcube.fit.joint_stored)."""

import numpy as np
import pytest

from bgcube import jax_cache
from bgcube.fit import joint_compiled, joint_stored
from bgcube.make import chain_backend as cb
from bgcube.simulate import make_test_dataset

pytest.importorskip("jax")
pytest.importorskip("flatbuffers", reason="JAX serializes programs with flatbuffers")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(
        tmp_path_factory.mktemp("stored") / "data", n_obs=10, random_state=8
    ).path


def _fit(dataset, outdir, monkeypatch, folder):
    """A device build's model, in a process whose programs are forgotten first."""
    from bgcube.make import make_models

    monkeypatch.setenv(cb.ENV_VAR, "device")
    monkeypatch.setattr(joint_stored, "_FOLDER", [folder])
    monkeypatch.setattr(joint_compiled, "_PROGRAMS", {})
    result = make_models(dataset, outdir, backend="jax", progress=False, fit_glat_min=0.0)
    return result.joint.model


def test_the_library_keeps_no_program():
    assert joint_stored.program_folder() is None


def test_programs_are_kept_read_back_and_replaced_when_damaged(dataset, tmp_path, monkeypatch):
    import jax

    traced = _fit(dataset, tmp_path / "traced", monkeypatch, None)
    folder = tmp_path / "programs"
    first = _fit(dataset, tmp_path / "first", monkeypatch, folder)
    kept = sorted(p.name.split("-")[1] for p in folder.glob("joint-*.jaxexport"))
    assert kept == ["advance", "newton", "start"]

    def no_tracing(*args, **kwargs):
        raise AssertionError("a kept program was traced again")

    with monkeypatch.context() as m:
        m.setattr(jax.export, "export", no_tracing)
        again = _fit(dataset, tmp_path / "again", monkeypatch, folder)
    for model in (first, again):  # the same programs: the same numbers, bit for bit
        for name in ("coef_a", "coef_s", "covariance"):
            np.testing.assert_array_equal(getattr(model, name), getattr(traced, name))
        np.testing.assert_array_equal(model.runs["N_PREDICTED"], traced.runs["N_PREDICTED"])

    damaged = next(folder.glob("joint-newton-*.jaxexport"))
    damaged.write_bytes(b"not a program")
    repaired = _fit(dataset, tmp_path / "repaired", monkeypatch, folder)
    assert damaged.read_bytes() != b"not a program"
    jax.export.deserialize(bytearray(damaged.read_bytes()))
    np.testing.assert_array_equal(repaired.coef_a, traced.coef_a)
    assert not list(folder.glob(".tmp-*"))  # written through a temporary file, renamed


def test_other_shapes_are_other_programs(dataset, tmp_path, monkeypatch):
    folder = tmp_path / "programs"
    _fit(dataset, tmp_path / "a", monkeypatch, folder)
    spec_free = sorted(folder.glob("joint-start-*.jaxexport"))
    from bgcube.make import make_models

    monkeypatch.setattr(joint_compiled, "_PROGRAMS", {})
    make_models(
        dataset,
        tmp_path / "b",
        backend="jax",
        progress=False,
        fit_glat_min=0.0,
        conditions="ZEN_PNT:cos:1",
    )
    assert len(list(folder.glob("joint-start-*.jaxexport"))) == len(spec_free) + 1


def test_the_command_keeps_the_programs_in_its_cache(dataset, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env.update({jax_cache.ENV_VAR: str(tmp_path / "cache"), cb.ENV_VAR: "device"})
    args = ["make-models", str(dataset), str(tmp_path / "out"), "--backend", "jax"]
    args += ["--no-progress", "--fit-glat-min", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "bgcube", *args], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name.split("-")[1] for p in (tmp_path / "cache" / "programs").iterdir())
    assert kept == ["advance", "newton", "start"]

"""examples/fit_hess_dr1.py on three H.E.S.S. DL3 DR1 runs: it fits, plots and writes a model."""

import os
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

pytest.importorskip("jax", reason="bgcube.fit needs JAX")

from bgcube import FOVCubeBackgroundModel  # noqa: E402
from bgcube.fit.smooth import below_threshold  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fit_hess_dr1.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUNS = ("33787", "33788", "33789")  # PKS 2155-304


@pytest.mark.slow
def test_fit_hess_dr1_example_on_three_runs(shared_data, tmp_path):
    outdir = tmp_path / "out"
    env = dict(os.environ, BGCUBE_DATA=str(shared_data), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE), str(outdir), "--obs-ids", *RUNS],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    assert "3 runs filled (0 failed)" in run.stdout
    assert "FitResult: converged" in run.stdout, run.stdout

    for name in ("fit_hess_dr1_images.png", "fit_hess_dr1_profiles.png"):
        data = (outdir / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000

    model = FOVCubeBackgroundModel.read(outdir / "fit_hess_dr1_model.fits.gz")
    cube = model.background_cube
    assert cube.meta["SMOOTH"] == "FIT" and cube.meta["FITMODEL"] == "flexible"
    assert cube.unit == u.Unit("1 / (MeV s sr)")
    counts = model.counts_cube.data
    assert counts.sum() > 5000  # real events from three runs
    fitted = ~below_threshold(counts)
    mu = (cube.quantity * model.counts_cube.bin_volume * model.livetime_cube.quantity).to_value(
        u.one
    )
    # the fitted expected counts add up to the counts of the fitted energy bins
    np.testing.assert_allclose(mu[fitted].sum(), counts[fitted].sum(), rtol=1e-6)
    assert np.all(cube.data[~fitted] == 0) and np.all(cube.data[fitted] > 0)
    # a smooth model of real data: far from perfect, but not wild
    stat_per_dof = cube.meta["FITSTAT"] / cube.meta["FITDOF"]
    assert 0.5 < stat_per_dof < 3.0, stat_per_dof

"""The demo (the README's main job) at a reduced size: it checks what make-models delivers."""

import numpy as np
from astropy.table import Table

from bgcube.cli import main
from bgcube.data.exclusion import ExclusionRegions
from bgcube.fit.joint import JointBackgroundModel
from bgcube.simulate import SimulatedDataset
from bgcube.simulate.demo import delivered_checks, run_demo


def test_demo_checks_the_delivered_models_against_the_truth(tmp_path):
    summary = run_demo(tmp_path, n_obs=10, seed=3, echo=None, progress=False)
    assert len(summary) >= 1
    # Poisson pulls of the runs' counts against the delivered per-run models: mean 0, width 1
    n = np.asarray(summary["N_BINS"])
    assert np.all(n > 100)
    assert np.all(np.abs(summary["PULL_MEAN"]) < 5 / np.sqrt(n) + 0.02)
    assert np.all(np.abs(np.asarray(summary["PULL_WIDTH"]) - 1) < 0.1)
    # the delivered rate against the true rate of each run (zenith and efficiency dependent)
    assert np.all(np.abs(np.asarray(summary["MEDIAN_RATIO"]) - 1) < 0.05)
    assert np.all(np.asarray(summary["RATIO_SPREAD"]) < 0.05)
    for name in ("demo_spectra.png", "demo_ratio.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (tmp_path / "models" / "bg_joint_model.fits.gz").is_file()
    assert len(list((tmp_path / "models" / "bkg").glob("*.fits.gz"))) == 10
    written = Table.read(tmp_path / "demo_summary.ecsv")
    assert list(written["ZENITH"]) == list(summary["ZENITH"])
    # the plotted spectra's statistical errors: small where the runs have counts, large
    # where the delivered spectrum is an extrapolation (no events above 30 TeV)
    checks = delivered_checks(
        SimulatedDataset.read(tmp_path / "dataset"),
        JointBackgroundModel.read(tmp_path / "models" / "bg_joint_model.fits.gz"),
        ExclusionRegions.from_table(Table.read(tmp_path / "models" / "bg_exclusion_regions.ecsv")),
    )
    e = checks["energy_edges"]
    energy = np.sqrt(e[1:] * e[:-1])
    counts = sum(run[1] for run in checks["runs"]).sum(axis=1)
    assert counts[energy > 30].sum() == 0
    for k in checks["picks"]:
        error = checks["spectrum_error"][k]
        assert error.shape == energy.shape and np.all(np.isfinite(error))
        assert error[np.argmin(np.abs(energy - 1))] < 0.2
        assert np.min(error[energy > 30]) > 5 * error[np.argmin(np.abs(energy - 1))]


def test_demo_command_refuses_to_overwrite(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--n-obs", "10", "--seed", "1"]) == 0
    assert "delivered per-run models against the truth" in capsys.readouterr().out
    assert main(["demo", str(tmp_path), "--n-obs", "10", "--seed", "1"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["demo", str(tmp_path), "--n-obs", "10", "--seed", "1", "--overwrite"]) == 0


def test_demo_needs_ten_runs(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--n-obs", "4"]) == 2
    assert "--n-obs must be >= 10" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()

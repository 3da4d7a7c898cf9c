"""The demo (the README's main job) at a reduced size."""

import numpy as np
from astropy.table import Table

from bgcube.cli import main
from bgcube.simulate.demo import run_demo


def test_demo_reconstructs_the_truth_and_writes_plots(tmp_path):
    summary = run_demo(tmp_path, n_obs=4, seed=3, echo=None, progress=False)
    assert len(summary) >= 1
    # Poisson pulls of the reconstructed counts against the truth: mean 0, width 1
    n = np.asarray(summary["N_BINS"])
    assert np.all(n > 100)
    assert np.all(np.abs(summary["PULL_MEAN"]) < 5 / np.sqrt(n))
    assert np.all(np.abs(np.asarray(summary["PULL_WIDTH"]) - 1) < 0.1)
    for gid in summary["GROUP_ID"]:
        for name in (f"group{gid}_comparison.png", f"group{gid}_model.png"):
            png = tmp_path / "plots" / name
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert (tmp_path / "models" / f"bg_cube_model_group{gid}_table.fits.gz").is_file()
    written = Table.read(tmp_path / "demo_summary.ecsv")
    assert list(written["GROUP_ID"]) == list(summary["GROUP_ID"])


def test_demo_command_refuses_to_overwrite(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--n-obs", "2", "--seed", "1"]) == 0
    assert "true versus reconstructed" in capsys.readouterr().out
    assert main(["demo", str(tmp_path), "--n-obs", "2", "--seed", "1"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["demo", str(tmp_path), "--n-obs", "2", "--seed", "1", "--overwrite"]) == 0

"""examples/apply_hess_dr1.py: built on half of the DR1, applied to the other, analysed in Gammapy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.table import Table

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.gammapy]


def test_apply_hess_dr1_example(tmp_path, shared_data):
    pytest.importorskip("gammapy.makers")
    env = dict(os.environ, BGCUBE_DATA=str(shared_data), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "apply_hess_dr1.py"), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    table = Table.read(out / "apply_hess_dr1_summary.ecsv")
    assert "SIG_WIDTH" in result.stdout  # the numbers are printed
    ours, published = (table[table["BACKGROUND"] == k][0] for k in ("bgcube", "published"))
    assert ours["N_RUNS"] == published["N_RUNS"] >= 8
    # a background that is right: norms near 1, significances outside the source ~ N(0, 1)
    assert 0.9 < ours["NORM_MEAN"] < 1.1 and ours["NORM_STD"] < 0.1
    assert abs(ours["SIG_MEAN"]) < 0.15 and 0.9 < ours["SIG_WIDTH"] < 1.15
    # and as good as the published models, within a few percent
    assert abs(ours["SIG_WIDTH"] - published["SIG_WIDTH"]) < 0.05
    assert ours["SIG_TARGET"] > 50  # the blazar is there
    # the applied folder is a Gammapy data store of the apply half
    assert (out / "applied" / "hdu-index.fits.gz").is_file()

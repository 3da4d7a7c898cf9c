"""What make-models prints about many runs: shortened tables and file listings."""

import numpy as np
import pytest
from astropy.table import Table

from bgcube.cli import main
from bgcube.make import report
from bgcube.make.report import file_listing, ratio_summary, shortened_rows
from bgcube.simulate import make_test_dataset


def _runs(n):
    return Table({"OBS_ID": np.arange(100, 100 + n), "OBS/PRED": np.linspace(0.8, 1.2, n)})


def test_a_short_table_is_printed_whole():
    table = _runs(5)
    assert shortened_rows(table, limit=5) == table.pformat(max_lines=-1, max_width=-1)


def test_a_long_table_shows_its_header_first_and_last_rows():
    table = _runs(50)
    lines = shortened_rows(table, limit=6)
    full = table.pformat(max_lines=-1, max_width=-1)
    assert lines[:2] == full[:2]  # names and the dashes
    assert lines[2:5] == full[2:5] and lines[-3:] == full[-3:]
    assert lines[5] == "..." and len(lines) == 2 + 6 + 1
    assert "100" in lines[2] and "149" in lines[-1]


def test_a_folder_of_many_files_is_one_line(tmp_path):
    top = [tmp_path / "bg_joint_model.fits.gz", tmp_path / "hdu-index.fits.gz"]
    runs = [tmp_path / "bkg" / f"bkg_obs_{i:06d}.fits.gz" for i in range(20136, 20136 + 30)]
    files = [top[0], *runs, top[1]]
    lines = file_listing(files, tmp_path, limit=10)
    assert lines == [
        "bg_joint_model.fits.gz",
        "bkg/: 30 files, bkg_obs_020136.fits.gz ... bkg_obs_020165.fits.gz",
        "hdu-index.fits.gz",
    ]
    # up to the limit, every file by name
    assert file_listing(files, tmp_path, limit=30) == [
        "bg_joint_model.fits.gz",
        *(f"bkg/{p.name}" for p in runs),
        "hdu-index.fits.gz",
    ]


def test_ratio_summary_gives_median_and_central_range():
    line = ratio_summary(_runs(101))
    assert (
        line == "OBS/PRED of the 101 runs: median 1.000, 16-84% 0.864-1.136"
    )  # 0.8 + 0.4 x 0.16, 0.84


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(
        tmp_path_factory.mktemp("listing") / "data", n_obs=12, random_state=3, efficiency_index=1.5
    )


def test_the_command_shortens_what_it_prints_about_many_runs(
    dataset, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(report, "LISTED", 4)
    outdir = tmp_path / "m"
    argv = ["make-models", str(dataset.path), str(outdir), "--no-progress", "--fit-glat-min", "0"]
    assert main([*argv, "--exclusion", "none"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = lines[: lines.index("")]  # the run table ends at the first empty line
    assert len(table) == 2 + 2 + 1 + 2 and table[4] == "..."  # 12 runs: 2 at each end
    assert "OBS/PRED of the 12 runs: median" in out
    assert f"the RUNS table of {outdir}/bg_joint_model.fits.gz" in out
    n_bkg = len(list((outdir / "bkg").iterdir()))
    assert f"  bkg/: {n_bkg} files, " in out and "bkg/bkg_obs_" not in out
    assert "file(s) written under" in out

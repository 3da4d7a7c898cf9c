"""make-models and apply-models apply one rule to a run outside the model's conditions.

On the H.E.S.S. DR1 the default joint model is fitted to the 61 runs at
|b| >= 10 deg; seven other runs lie slightly outside their range of
conditions (MUONEFF above 1.189, zenith below 3.8 deg). Both commands write
them, flagged, by default, and both leave them out with --no-extrapolate;
the files of the two commands are the same.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bgcube.cli import main
from bgcube.fit.joint import JOINT_MODEL_FILE, JointBackgroundModel
from bgcube.make.extrapolation import LISTED, report_lines
from bgcube.make.model_source import JointModelSource, load_model_source

#: The DR1 runs outside the conditions of the 61 fitted runs.
OUTSIDE = [20136, 20137, 20151, 20365, 20898, 26850, 27121]


@pytest.fixture(scope="module")
def builds(shared_data, tmp_path_factory):
    indir = shared_data / "hess-dl3-dr1"
    if not indir.is_dir():
        pytest.skip(f"no H.E.S.S. DL3 DR1 under {shared_data}")
    root = tmp_path_factory.mktemp("extrapolation")
    for name, extra in (("default", []), ("strict", ["--no-extrapolate"])):
        models, applied = root / name / "models", root / name / "applied"
        assert main(["make-models", str(indir), str(models), "--no-progress", *extra]) == 0
        assert main(["apply-models", str(models), str(indir), str(applied), *extra]) == 0
    return indir, root


def per_run(folder):
    """OBS_ID -> (BKG_EXTR, BKG data) of a folder's per-run files, and its hdu-index runs."""
    out = {}
    for path in sorted((folder / "bkg").glob("bkg_obs_*.fits.gz")):
        with fits.open(path) as hdus:
            out[int(hdus[1].header["OBS_ID"])] = (
                bool(hdus[1].header.get("BKG_EXTR", False)),
                np.array(hdus[1].data["BKG"]),
            )
    index = Table.read(folder / "hdu-index.fits.gz")
    bkg = np.char.strip(np.asarray(index["HDU_TYPE"]).astype(str)) == "bkg"
    assert sorted(int(i) for i in index["OBS_ID"][bkg]) == sorted(out)
    return out


def test_make_and_apply_write_the_same_runs_flagged_alike(builds):
    _, root = builds
    made = per_run(root / "default" / "models")
    applied = per_run(root / "default" / "applied")
    assert len(made) == 105 and sorted(made) == sorted(applied)
    assert sorted(i for i, (flag, _) in made.items() if flag) == OUTSIDE
    for obs_id, (flag, data) in made.items():
        assert applied[obs_id][0] == flag
        assert np.array_equal(applied[obs_id][1], data), obs_id


def test_with_no_extrapolate_both_leave_out_the_same_runs(builds):
    _, root = builds
    made = per_run(root / "strict" / "models")
    applied = per_run(root / "strict" / "applied")
    assert len(made) == 98 and sorted(made) == sorted(applied)
    assert not set(OUTSIDE) & set(made)
    assert not any(flag for flag, _ in made.values())


def test_the_runs_table_flags_the_extrapolated_runs(builds):
    _, root = builds
    for name in ("default", "strict"):  # every run is in the table, either way
        model = JointBackgroundModel.read(root / name / "models" / JOINT_MODEL_FILE)
        runs = model.runs
        assert len(runs) == 105
        assert sorted(int(i) for i in runs["OBS_ID"][runs["EXTRAPOLATED"]]) == OUTSIDE
        assert not np.any(np.asarray(runs["FITTED"])[np.asarray(runs["EXTRAPOLATED"])])


def test_a_fitted_model_and_its_file_have_one_validity(builds):
    _, root = builds
    source = load_model_source(root / "default" / "models")
    assert isinstance(source, JointModelSource)
    assert set(source.validity.ranges) == set(source.condition_columns)


def test_both_reports_name_the_runs(builds, tmp_path, capsys):
    indir, root = builds
    models = root / "default" / "models"
    assert main(["apply-models", str(models), str(indir), str(tmp_path / "a")]) == 0
    applied = capsys.readouterr().err
    assert main(["make-models", str(indir), str(tmp_path / "m"), "--no-progress"]) == 0
    made = capsys.readouterr().err
    for err in (applied, made):
        assert "extrapolated OBS_ID 20136: MUONEFF = 1.213 outside the model's range" in err
        assert "note: 7 run(s) written with the model extrapolated" in err


def test_report_lines_are_a_screenful():
    many = [(i, "ZEN_PNT = 70 outside the model's range [0, 60]") for i in range(100)]
    lines = report_lines(many, [])
    assert len(lines) == LISTED + 2
    assert lines[LISTED] == f"... and {100 - LISTED} more run(s) extrapolated"
    assert report_lines([], []) == []


def test_a_value_just_beyond_the_range_reads_differently_from_the_edge():
    from bgcube.make.validity import Validity

    validity = Validity({"MUONEFF": (0.6021, 0.99980136), "ZEN_PNT": (3.829, 52.66)})
    assert validity.reasons({"MUONEFF": 0.99980628, "ZEN_PNT": 10.0}) == [
        "MUONEFF = 0.99981 outside the model's range [0.6021, 0.9998]"
    ]  # 4 digits said 0.9998 for both
    assert validity.reasons({"MUONEFF": 0.8, "ZEN_PNT": 2.548}) == [
        "ZEN_PNT = 2.548 outside the model's range [3.829, 52.66]"
    ]

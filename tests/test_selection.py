"""Run selection: run lists, safe conditions on obs-index columns, make-models options."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table

from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import ObservationError
from bgcube.make import make_models
from bgcube.make.selection import (
    RunSelection,
    SelectionError,
    evaluate_condition,
    parse_condition,
    parse_obs_ids,
)
from bgcube.simulate import make_test_background, make_test_dataset


@pytest.fixture
def table():
    return Table(
        {
            "OBS_ID": [1, 2, 3, 4, 5],
            "ZEN_PNT": np.array([10.0, 35.0, 45.0, 20.0, 60.0]) * u.deg,
            "N_TELS": [4, 3, 4, 2, 3],
            "OBJECT": np.array([b"Crab  ", b"PKS 2155-304", b"Crab", b"Off", b"PKS 2155-304"]),
            "DATE-OBS": ["2004-03-26", "2004-05-01", "2004-07-02", "2004-01-01", "2005-02-03"],
        }
    )


def test_parse_obs_ids_list_and_file(tmp_path):
    assert parse_obs_ids("3, 1,2,1") == [3, 1, 2]
    path = tmp_path / "runs.txt"
    path.write_text("# runs\n23523\n\n23526  # good\n23559,23592\n")
    assert parse_obs_ids(f"@{path}") == [23523, 23526, 23559, 23592]
    path.write_text("23523\nx12\n")
    with pytest.raises(SelectionError, match=r"'x12'.*line 2"):
        parse_obs_ids(f"@{path}")
    with pytest.raises(SelectionError, match="does not exist"):
        parse_obs_ids(f"@{tmp_path / 'none.txt'}")
    with pytest.raises(SelectionError, match="not an integer"):
        parse_obs_ids("1,2.5")
    with pytest.raises(SelectionError, match="no run id"):
        parse_obs_ids(" , ")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("ZEN_PNT < 40 and N_TELS >= 3", [1, 2]),
        ("zen_pnt < 40", [1, 2, 4]),  # names ignore case
        ("20 <= ZEN_PNT < 50", [2, 3, 4]),  # chained
        ("not (ZEN_PNT < 40) or OBS_ID == 4", [3, 4, 5]),
        ("OBJECT == 'Crab'", [1, 3]),  # text stripped, bytes decoded
        ("OBJECT in ('Crab', 'Off') and N_TELS != 2", [1, 3]),
        ("OBJECT not in ['Crab']", [2, 4, 5]),
        ("ZEN_PNT > -1.5e1", [1, 2, 3, 4, 5]),
        ("`DATE-OBS` >= '2004-06' and `N_TELS` > 2", [3, 5]),  # backquoted names
        ("`date-obs` < '2004-06' or OBJECT == 'a`b'", [1, 2, 4]),  # a backquote in a string
    ],
)
def test_conditions(table, condition, expected):
    mask = evaluate_condition(condition, table)
    assert table["OBS_ID"][mask].tolist() == expected


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("__import__('os').system('true')", "Call"),
        ("ZEN_PNT.max() > 3", "Attribute|Call"),
        ("ZEN_PNT * 2 < 40", "BinOp"),
        ("ZEN_PNT < 40 if True else False", "IfExp"),
        ("ZEN_PNT", "not a condition"),
        ("ZEN_PNT is None", "Is"),
        ("OBJECT in OBJECT", "list of constants"),
        ("ZEN_PNT < (lambda: 1)()", "Call"),
        ("ZEN_PNT <", "not a valid condition"),
        ("ZEN_PNT < True", "not a number or a string"),
        ("OBJECT in ('Crab',) == 1", "cannot be chained"),
        ("DATE-OBS > '2004'", r"BinOp 'DATE - OBS' is not allowed.*backquotes: `DATE-OBS`"),
        ("`DATE-OBS > '2004'", "a backquote is not closed"),
        ("`` > '2004'", "empty backquotes"),
        ("`DATE-END` > '2004'", "no column 'DATE-END'"),
    ],
)
def test_forbidden_constructs_are_named(table, condition, message):
    with pytest.raises(SelectionError, match=message):
        evaluate_condition(condition, table)


def test_unknown_column_and_type_mismatch_are_named(table):
    with pytest.raises(SelectionError, match=r"no column 'ZENITH'.*OBS_ID, ZEN_PNT"):
        evaluate_condition("ZENITH < 40", table)
    with pytest.raises(SelectionError, match=r"OBJECT \(text\) with 3 \(number\)"):
        evaluate_condition("OBJECT == 3", table)
    # a construct is refused before any data are looked at
    with pytest.raises(SelectionError, match="Call"):
        parse_condition("open('x')")


def test_run_selection_order_errors_and_provenance(table):
    sel = RunSelection(obs_ids="1,2,3,4", exclude_obs_ids=[2], select="N_TELS >= 3")
    assert table["OBS_ID"][sel.mask(table)].tolist() == [1, 3]
    assert sel.provenance() == {"SELIDS": "1,2,3,4", "SELEXCL": "2", "SELEXPR": "N_TELS >= 3"}
    with pytest.raises(ObservationError, match=r"\[9\]"):
        RunSelection(obs_ids=[1, 9]).mask(table)
    with pytest.raises(ObservationError, match=r"no run selected.*selection 'ZEN_PNT > 80' -> 0"):
        RunSelection(exclude_obs_ids=[1], select="ZEN_PNT > 80").mask(table)
    with pytest.raises(SelectionError, match="Call"):
        RunSelection(select="f(1)")  # checked when made, before any data are read
    assert RunSelection().is_all


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        8 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=8,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=4,
    )
    return make_test_dataset(
        tmp_path_factory.mktemp("sel") / "ds",
        n_obs=6,
        random_state=5,
        background=background,
        alt_range=Angle([35, 85], "deg"),
        ontime=300 * u.s,
        n_tels_range=(2, 4),
    )


def test_make_models_uses_the_selected_runs_and_records_them(dataset, tmp_path):
    obs = DataStore.from_dir(dataset.path).obs_table
    keep = [int(i) for i in obs["OBS_ID"][obs["N_TELS"] >= 3]]
    drop = keep[0]
    result = make_models(
        dataset.path,
        tmp_path,
        exclusion="none",
        progress=False,
        select="N_TELS >= 3",
        exclude_obs_ids=[drop],
        model="groups",
    )
    used = sorted(i for g in result.groups for i in g.obs_ids)
    assert used == sorted(set(keep) - {drop})
    written = Table.read(tmp_path / "bg_observation_table.fits.gz")
    assert sorted(written["OBS_ID"].tolist()) == used
    assert written.meta["SELEXPR"] == "N_TELS >= 3"
    assert written.meta["SELEXCL"] == str(drop)
    assert written.meta["SELIDS"] == "ALL"


def test_command_line_selection(dataset, tmp_path, capsys):
    ids = [int(i) for i in dataset.obs_ids]
    runs = tmp_path / "runs.txt"
    runs.write_text("\n".join(str(i) for i in ids[::2]))
    status = main(
        [
            "make-models",
            "--model",
            "groups",
            str(dataset.path),
            str(tmp_path / "a"),
            "--obs-ids",
            f"@{runs}",
            "--exclusion",
            "none",
            "--no-progress",
        ]
    )
    assert status == 0
    written = Table.read(tmp_path / "a" / "bg_observation_table.fits.gz")
    assert sorted(written["OBS_ID"].tolist()) == sorted(ids[::2])
    capsys.readouterr()
    status = main(
        [
            "make-models",
            "--model",
            "groups",
            str(dataset.path),
            str(tmp_path / "b"),
            "--select",
            "ZEN_PNT > 89",
            "--no-progress",
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "no run selected" in err and "ZEN_PNT > 89" in err
    assert not (tmp_path / "b" / "bg_observation_table.fits.gz").exists()
    status = main(
        [
            "make-models",
            "--model",
            "groups",
            str(dataset.path),
            str(tmp_path / "c"),
            "--select",
            "import os",
            "--no-progress",
        ]
    )
    assert status == 1
    assert "not a valid condition" in capsys.readouterr().err

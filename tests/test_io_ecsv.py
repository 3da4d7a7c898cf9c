"""The lean ECSV writer gives astropy's bytes, and leaves other tables to astropy."""

from collections import OrderedDict

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Column, MaskedColumn, QTable, Table

from bgcube.io.ecsv import ecsv_lines, write_ecsv


def _tables():
    rng = np.random.default_rng(1)
    yield Table({"GROUP_ID": np.arange(3), "ZEN_MIN": [0.0, 20.0, 30.5] * u.deg})
    long = "Observation groups of bgcube: boxes [ZEN_MIN, ZEN_MAX) x [AZ_MIN, AZ_MAX) in deg;"
    t = Table({"A": [1, 2], "B": ["x y", ""]})
    t.meta["comments"] = [long, "azimuth boxes wrap: 'quoted' and \"double\" # hash"]
    yield t
    yield Table(
        {
            "NAME": ["MSH15-52", "3C 273", 'a "q" b', "", " lead", "é ü", "#x"],
            "RA": np.float32(rng.uniform(0, 360, 7)).astype(np.float64) * u.deg,
            "F32": rng.normal(size=7).astype(np.float32),
            "I32": np.arange(7, dtype=np.int32) - 3,
            "U8": np.arange(7, dtype=np.uint8),
            "B": rng.random(7) > 0.5,
            "X": [np.nan, np.inf, -np.inf, -0.0, 1e-300, 1e17, 123456789.123456789],
        }
    )
    t = Table({"R": [1.0] * u.Unit("1 / (MeV s sr)"), "E": [2.0] * u.TeV, "S": [3.0] * u.m**2})
    t.meta = OrderedDict(
        [
            ("z", 1),
            ("a", 2.5),
            ("flag", True),
            ("none", None),
            ("nested", {"k": [1, 2], "b": "c"}),
            ("odict", OrderedDict([("y", 1), ("x", "two words")])),
            ("weird key: yes", "value: with colon"),
            ("float", 1e17),
            ("nan", float("nan")),
        ]
    )
    yield t
    yield Table({"only": np.array([], dtype=np.float64)})
    yield Table({"ONE": [1.5]}, meta={"k": "v" * 200})


@pytest.mark.parametrize("table", list(_tables()), ids=lambda t: ",".join(t.colnames))
def test_same_bytes_as_astropy(table, tmp_path):
    assert ecsv_lines(table) is not None
    ours, theirs = tmp_path / "ours.ecsv", tmp_path / "theirs.ecsv"
    write_ecsv(table, ours)
    table.write(theirs, format="ascii.ecsv")
    assert ours.read_bytes() == theirs.read_bytes()


def _others():
    yield QTable({"A": [1.0] * u.deg})
    yield Table({"A": MaskedColumn([1.0, 2.0], mask=[True, False])})
    yield Table({"A": Column([1.0], format="%.3f")})
    yield Table({"A": Column([1.0], description="a column")})
    yield Table({"A": Column([1.0], meta={"k": 1})})
    yield Table({"A": np.zeros((2, 3))})
    yield Table({"A": np.array([b"x"])})
    yield Table({"A": [1.0]}, meta={"t": (1, 2)})
    yield Table({"A": [1.0]}, meta={"n": np.float64(1.0)})
    yield Table({"A": [1.0]}, meta={"q": 1 * u.deg})
    yield Table({" A": [1.0]})
    yield Table({"# A": [1.0]})
    yield Table()


@pytest.mark.parametrize("table", list(_others()), ids=lambda t: ",".join(t.colnames) or "empty")
def test_other_tables_go_to_astropy(table, tmp_path):
    assert ecsv_lines(table) is None
    if len(table.colnames):
        ours, theirs = tmp_path / "ours.ecsv", tmp_path / "theirs.ecsv"
        write_ecsv(table, ours)
        table.write(theirs, format="ascii.ecsv")
        assert ours.read_bytes() == theirs.read_bytes()

"""Observation groups in zenith x azimuth (bgcube.make.grouping)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from hypothesis import given
from hypothesis import strategies as st

from bgcube.errors import BinningError, FileFormatError, ObservationError, OutputExistsError
from bgcube.make.grouping import ObservationGroups

ZEN = [0, 20, 30, 40, 50, 60]
AZ = [-30, 90, 210, 330]


def membership(groups, zen, az):
    """Reference: for each (zen, az), the boxes holding it, checked one by one."""
    az = np.mod(az, 360.0)
    az = np.where(az >= 360.0, az - 360.0, az)  # -1e-300 % 360 rounds to 360
    hits = np.zeros((len(zen), groups.n_groups), dtype=bool)
    for k in range(groups.n_groups):
        lo, hi = groups.az_min[k], groups.az_max[k]
        in_zen = (zen >= groups.zen_min[k]) & (zen < groups.zen_max[k])
        if hi > lo:
            in_az = (az >= lo) & (az < hi)
        else:  # wraps through north (or the full circle when equal)
            in_az = (az >= lo) | (az < hi) if hi != lo else np.ones_like(az, dtype=bool)
        hits[:, k] = in_zen & in_az
    return hits


def obs_table(zen, az, ontime=None):
    n = len(zen)
    table = Table(
        {
            "OBS_ID": np.arange(100, 100 + n),
            "ZEN_PNT": np.asarray(zen, dtype=float),
            "AZ_PNT": np.asarray(az, dtype=float),
            "ONTIME": np.full(n, 1000.0) if ontime is None else np.asarray(ontime, float),
        }
    )
    table["ZEN_PNT"].unit = table["AZ_PNT"].unit = "deg"
    table["ONTIME"].unit = "s"
    return table


def test_grid_table():
    groups = ObservationGroups.from_bins(ZEN, AZ)
    assert groups.n_groups == 15 and groups.list_of_groups == list(range(15))
    table = groups.table
    assert table.colnames == ["GROUP_ID", "ZEN_MIN", "ZEN_MAX", "AZ_MIN", "AZ_MAX"]
    assert table["ZEN_MIN"].unit == u.deg
    first = table[0]
    assert (first["ZEN_MIN"], first["ZEN_MAX"], first["AZ_MIN"], first["AZ_MAX"]) == (
        0,
        20,
        330,
        90,
    )


@given(
    st.lists(
        st.tuples(st.floats(0, 60, exclude_max=True), st.floats(-720, 720)),
        min_size=1,
        max_size=50,
    )
)
def test_every_run_lands_in_exactly_one_group(points):
    zen, az = np.array(points).T
    for groups in (
        ObservationGroups.from_bins(ZEN, AZ),
        ObservationGroups.from_bins(ZEN),
        ObservationGroups.from_bins([0, 60], [0, 45, 90, 180, 360]),
    ):
        hits = membership(groups, zen, az)
        assert np.all(hits.sum(axis=1) == 1)
        ids = groups.group_id_of(zen, az)
        np.testing.assert_array_equal(ids, groups.group_ids[np.argmax(hits, axis=1)])


def test_azimuth_wrap():
    groups = ObservationGroups.from_bins([0, 90], [-30, 30, 330])  # [330, 30) and [30, 330)
    ids = groups.group_id_of(np.full(6, 10.0), [350.0, 0.0, 29.99, 30.0, 329.99, 330.0])
    assert ids.tolist() == [0, 0, 0, 1, 1, 0]
    assert groups.group_id_of([10.0], [-10.0]).tolist() == [0]  # -10 = 350
    assert groups.group_id_of([10.0, 10.0], [370.0, 390.0]).tolist() == [0, 1]


def test_bad_edges():
    with pytest.raises(BinningError, match="span exactly 360"):
        ObservationGroups.from_bins(ZEN, [0, 90, 180])
    with pytest.raises(BinningError, match="increasing"):
        ObservationGroups.from_bins([0, 30, 20])
    with pytest.raises(BinningError, match="overlap"):
        ObservationGroups([0, 10], [20, 30], [0, 350], [90, 20])


def test_group_observation_table_and_outside():
    groups = ObservationGroups.from_bins([0, 30, 60], [0, 180, 360])
    table = obs_table([10, 45, 10, 59], [10, 200, 270, 90])
    grouped = groups.group_observation_table(table)
    assert grouped["GROUP_ID"].tolist() == [0, 3, 1, 2]
    assert "GROUP_ID" not in table.colnames  # a copy
    assert len(groups.get_group_of_observations(grouped, 1)) == 1
    out = obs_table([10, 75], [10, 10])
    with pytest.raises(ObservationError, match=r"OBS_ID \[101\]"):
        groups.group_observation_table(out)
    assert groups.group_observation_table(out, outside="drop")["OBS_ID"].tolist() == [100]


def test_alt_pnt_instead_of_zenith():
    groups = ObservationGroups.from_bins([0, 30, 60])
    table = Table({"OBS_ID": [1, 2], "ALT_PNT": [80.0, 50.0], "AZ_PNT": [0.0, 0.0]})
    assert groups.group_observation_table(table)["GROUP_ID"].tolist() == [0, 1]
    with pytest.raises(FileFormatError, match="AZ_PNT"):
        groups.group_observation_table(Table({"OBS_ID": [1], "ZEN_PNT": [10.0]}))


def test_cos_zenith_bins():
    groups = ObservationGroups.from_cos_zenith_bins([1.0, 0.9, 0.8, 0.5])
    np.testing.assert_allclose(groups.zen_min, np.degrees(np.arccos([1.0, 0.9, 0.8])), atol=1e-12)
    np.testing.assert_allclose(groups.zen_max[-1], 60.0)


def test_merge_small_groups():
    groups = ObservationGroups.from_bins([0, 20, 30, 40, 50], [-90, 90, 270])
    # north column: 1 run at 25 deg, 6 at 35, 5 at 45; south column: 4 runs at 10
    zen = [25] + [35] * 6 + [45] * 5 + [10] * 4
    az = [0] * 12 + [180] * 4
    table = obs_table(zen, az)
    merged = groups.merge_small_groups(table, min_observations=3)
    summary = merged.summary(table)
    occupied = summary[summary["N_OBS"] > 0]
    assert np.all(occupied["N_OBS"] >= 3)
    assert summary["N_OBS"].sum() == len(table)
    assert summary["ONTIME"].sum() == pytest.approx(16000.0)
    # the south column had only one occupied bin: all its bins merge into one group
    south = summary[summary["AZ_MIN"] == 90]
    assert len(south) == 1 and south["ZEN_MIN"][0] == 0 and south["ZEN_MAX"][0] == 50
    # the empty [0, 20) bin merges first (least time) with the lone run at 25 deg;
    # still too small, they join the 6 runs of [30, 40); [40, 50) is left alone
    north = summary[summary["AZ_MIN"] == 270]
    assert north["ZEN_MIN"].tolist() == [0, 40] and north["ZEN_MAX"].tolist() == [40, 50]
    assert north["N_OBS"].tolist() == [7, 5]
    grouped = merged.group_observation_table(table)
    assert np.all(grouped["GROUP_ID"] >= 0)
    # the merged boxes still tile the domain: random points hit exactly one
    rng = np.random.default_rng(0)
    z, a = rng.uniform(0, 50, 2000), rng.uniform(0, 360, 2000)
    assert np.all(membership(merged, z, a).sum(axis=1) == 1)


def test_merge_by_time():
    groups = ObservationGroups.from_bins([0, 10, 20, 30])
    table = obs_table([5, 15, 15, 25], [0, 0, 0, 0], ontime=[500, 1000, 1000, 4000])
    merged = groups.merge_small_groups(table, min_time=1200 * u.s, min_observations=0)
    summary = merged.summary(table)
    assert summary["ONTIME"].tolist() == [2500.0, 4000.0]
    assert summary["ZEN_MIN"].tolist() == [0, 20] and summary["ZEN_MAX"].tolist() == [20, 30]
    unchanged = groups.merge_small_groups(table, min_observations=1)
    assert unchanged.n_groups == 3


def test_ecsv_round_trip(tmp_path):
    groups = ObservationGroups.from_bins(ZEN, AZ)
    path = tmp_path / "bg_observation_groups.ecsv"
    groups.write(path)
    back = ObservationGroups.read(path)
    for name in ("group_ids", "zen_min", "zen_max", "az_min", "az_max"):
        np.testing.assert_array_equal(getattr(back, name), getattr(groups, name))
    with pytest.raises(OutputExistsError):
        groups.write(path)
    groups.write(path, overwrite=True)
    with pytest.raises(FileFormatError, match="does not exist"):
        ObservationGroups.read(tmp_path / "absent.ecsv")
    Table({"GROUP_ID": [0]}).write(tmp_path / "bad.ecsv", format="ascii.ecsv")
    with pytest.raises(FileFormatError, match="ZEN_MIN"):
        ObservationGroups.read(tmp_path / "bad.ecsv")


def test_hess_runs_each_in_one_group(shared_data):
    path = shared_data / "hess-dl3-dr1" / "obs-index.fits.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    table = Table.read(path)
    groups = ObservationGroups.from_bins([0, 20, 30, 40, 50, 60], [-90, 90, 270])
    grouped = groups.group_observation_table(table)
    assert len(grouped) == len(table) == 105
    summary = groups.summary(table)
    assert summary["N_OBS"].sum() == 105
    merged = groups.merge_small_groups(table, min_observations=5)
    assert np.all(merged.summary(table)["N_OBS"] >= 5)

"""CubeAxis owns its vocabulary: constructors, table round trip, index with clip."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from bgcube import CubeAxis
from bgcube.array import Binning, bin_index
from bgcube.binning import define_cube_binning
from bgcube.errors import BinningError


def test_from_energy_bounds_is_the_make_models_rule():
    table = Table({"OBS_ID": np.arange(200)})
    _, _, energy = define_cube_binning(table)
    axis = CubeAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, len(energy) - 1)
    assert np.array_equal(axis.edges.to_value(u.TeV), energy.to_value(u.TeV))
    assert axis.interp == "log" and axis.name == "ENERGY"
    with pytest.raises(BinningError, match="energy_min < energy_max"):
        CubeAxis.from_energy_bounds(1 * u.TeV, 0.1 * u.TeV, 5)


def test_from_edges_and_table_round_trip():
    axis = CubeAxis.from_edges([-2.0, -0.5, 0.0, 3.0], "DETX", unit="deg")
    assert axis.unit == u.deg and axis.nbin == 3
    back = CubeAxis.from_table(axis.to_table(), "DETX")
    assert back == axis
    one_row_per_bin = Table(
        {"DETX_LO": [-2.0, -0.5, 0.0] * u.deg, "DETX_HI": [-0.5, 0.0, 3.0] * u.deg}
    )
    assert CubeAxis.from_table(one_row_per_bin, "DETX") == axis
    gap = Table({"DETX_LO": [0.0, 2.0] * u.deg, "DETX_HI": [1.0, 3.0] * u.deg})
    with pytest.raises(BinningError, match="not contiguous"):
        CubeAxis.from_table(gap, "DETX")


def test_index_clip_modes_agree_with_the_core():
    edges = [-2.0, -0.5, 0.0, 3.0]
    axis = CubeAxis.from_edges(edges, "DETY", unit="deg")
    values = np.array([-3.0, -2.0, -0.5, 2.999, 3.0, 10.0])
    core = np.asarray(bin_index(np.asarray(values), Binning.from_edges(edges)))
    np.testing.assert_array_equal(axis.index(values * u.deg, clip=False), core)
    np.testing.assert_array_equal(axis.index(values * u.deg, clip=True), [0, 0, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="outside the cube's range"):
        axis.index(values * u.deg)
    with pytest.raises(ValueError):
        axis.index(np.nan * u.deg, clip=True)
    assert axis.index(0.1 * u.deg) == 2

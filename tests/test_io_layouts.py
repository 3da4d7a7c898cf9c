"""Synthetic BKG_3D files: column order, stored axis order, TDIM or not, column names."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from _io_helpers import NE, NX, NY, coded_cube, write_bkg
from astropy.io import fits
from astropy.table import Table

from bgcube import FOVCube
from bgcube.errors import AmbiguousLayoutWarning, AssumedUnitWarning
from bgcube.io.formats import LAYOUTS


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_with_distinct_sizes(tmp_path, layout):
    cube = coded_cube()
    path = write_bkg(tmp_path / "bkg.fits", cube, layout=layout)
    read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.detx_axis == cube.detx_axis and read.dety_axis == cube.dety_axis


def test_ctao_prod5_style(tmp_path):
    """Energy columns first, data with energy fastest (TDIM (nE, nx, ny))."""
    cube = coded_cube()
    order = ["ENERG_LO", "ENERG_HI", "DETX_LO", "DETX_HI", "DETY_LO", "DETY_HI", "BKG"]
    path = write_bkg(tmp_path / "prod5.fits", cube, order=order)
    assert fits.getheader(path, 1)["TDIM7"] == f"({NE},{NX},{NY})"
    read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.data[3, 2, 1] == 100 * 3 + 10 * 2 + 1 + 1


def test_shuffled_columns_and_float32(tmp_path):
    cube = coded_cube(dtype=np.float32)
    order = ["BKG", "DETY_HI", "ENERG_LO", "DETX_HI", "DETY_LO", "ENERG_HI", "DETX_LO"]
    path = write_bkg(tmp_path / "shuffled.fits", cube, order=order, layout="energy-slowest")
    read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)


def test_square_with_tdim_follows_gammapy_without_warning(tmp_path):
    cube = coded_cube(nx=3, ny=3)
    path = write_bkg(tmp_path / "square.fits", cube, layout="energy-slowest")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)


def test_energy_axis_ambiguous_warns(tmp_path):
    # nE == nDETY: stored (nE, nx, ny) also fits energy-fastest (ny, nx, nE).
    cube = coded_cube(nx=4, ny=5, ne=5)
    path = write_bkg(tmp_path / "ambiguous.fits", cube, layout="energy-fastest")
    with pytest.warns(AmbiguousLayoutWarning, match="several axis orders"):
        read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)


@pytest.mark.parametrize(("nx", "ny"), [(3, 3), (4, 3)])
def test_no_tdim_warns_and_assumes_energy_slowest(tmp_path, nx, ny):
    cube = coded_cube(nx=nx, ny=ny)
    path = write_bkg(
        tmp_path / "flat.fits",
        cube,
        layout="energy-slowest",
        tdim=False,
        column="BGD",
        unit="1/s/MeV/sr",
    )
    assert "TDIM7" not in fits.getheader(path, 1)
    with pytest.warns(AmbiguousLayoutWarning, match="no TDIM") as record:
        read = FOVCube.read(path)
    assert "flat.fits" in str(record[0].message)
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.unit == u.Unit("1 / (MeV s sr)")


def test_no_tdim_layout_keyword(tmp_path):
    cube = coded_cube()
    path = write_bkg(tmp_path / "flat.fits", cube, layout="fovcube", tdim=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = FOVCube.read(path, layout="fovcube")
    np.testing.assert_array_equal(read.data, cube.data)


def test_legacy_dialect_square(tmp_path):
    """A file of the original FOVCube (no HDUCLASS, column Bgd) is [E, y, x] as stored."""
    cube = coded_cube(nx=3, ny=3)
    path = write_bkg(
        tmp_path / "legacy.fits",
        cube,
        layout="fovcube",
        column="Bgd",
        unit="1 / (s sr TeV)",
        header={"E_THRES": 0.01},
    )
    read = FOVCube.read(path)
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.unit == u.Unit("1 / (TeV s sr)")
    assert read.meta == {"E_THRES": 0.01}


def test_from_table(tmp_path):
    cube = coded_cube()
    path = write_bkg(tmp_path / "bkg.fits", cube)
    table = Table.read(path, hdu="BACKGROUND")
    read = FOVCube.from_table(table)
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.unit == cube.unit
    assert read.scheme == "bg_cube"
    assert FOVCube.from_table(cube.to_table()).detx_axis == cube.detx_axis


def test_from_table_with_unparsed_unit(tmp_path):
    """astropy's Table reader leaves '1/s/MeV/sr' unrecognised; from_table parses it."""
    cube = coded_cube()
    path = write_bkg(tmp_path / "bkg.fits", cube, unit="1/s/MeV/sr")
    with pytest.warns(u.UnitsWarning):
        table = Table.read(path, hdu="BACKGROUND")
    assert FOVCube.from_table(table).unit == u.Unit("1 / (MeV s sr)")


def test_empty_background_unit_assumed(tmp_path):
    cube = coded_cube()
    path = write_bkg(tmp_path / "bkg.fits", cube, unit="")
    with pytest.warns(AssumedUnitWarning, match="assumed 1 / \\(MeV s sr\\)"):
        read = FOVCube.read(path)
    assert read.unit == u.Unit("1 / (MeV s sr)")


def test_alternative_axis_names(tmp_path):
    """The old generic scheme's X/Y/E columns and DATA are found by name."""
    cube = coded_cube()
    table = cube.to_table()
    for old, new in (("DETX", "X"), ("DETY", "Y"), ("ENERG", "E")):
        for end in ("_LO", "_HI"):
            table.rename_column(old + end, new + end)
    table.rename_column("BKG", "DATA")
    read = FOVCube.from_table(table)
    assert read.scheme is None
    np.testing.assert_array_equal(read.data, cube.data)

"""Golden tests: every real background file in ../shared/data reads with the right axes and values.

The expected arrays come from astropy reading the raw table cells; the
orientation rules are those of `bgcube.io.layout`: original FOVCube files
store the cube as ``[E, y, x]``; GADF/CTA files are read as Gammapy 2.x
reads them (the middle stored axis is DETX, the fastest DETY).
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from bgcube import FOVCube, FOVCubeBackgroundModel

LEGACY = "gammapy-extra-background"
CTA = "cta-1dc/irf_file_South_z20_50h.fits"


def raw_cell(path, hdu, column):
    with fits.open(path) as hdulist:
        table = hdulist[hdu].data
        return {name: np.array(table[name][0]) for name in table.columns.names}, np.array(
            table[column][0]
        )


def raw_edges(cells, prefix):
    return np.append(cells[f"{prefix}_LO"], cells[f"{prefix}_HI"][-1])


def check_axes(cube, cells, x_unit="deg", e_unit="TeV"):
    np.testing.assert_array_equal(cube.coordx_edges.to_value(x_unit), raw_edges(cells, "DETX"))
    np.testing.assert_array_equal(cube.coordy_edges.to_value(x_unit), raw_edges(cells, "DETY"))
    np.testing.assert_array_equal(cube.energy_edges.to_value(e_unit), raw_edges(cells, "ENERG"))


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("bg_cube_model_test1.fits", (14, 24, 24)),
        ("bg_cube_model_test2.fits.gz", (10, 20, 20)),
        ("bg_cube_model_true.fits.gz", (20, 60, 60)),
        ("bg_cube_model_reco.fits.gz", (20, 60, 60)),
    ],
)
def test_legacy_background(shared_data, name, shape):
    path = shared_data / LEGACY / name
    cube = FOVCube.read(path, scheme="bg_cube")
    cells, raw = raw_cell(path, "BACKGROUND", "Bgd")
    assert cube.shape == shape
    assert cube.scheme == "bg_cube"
    assert cube.unit == u.Unit("1 / (s sr TeV)")
    assert cube.backend == "numpy"
    check_axes(cube, cells)
    # The original FOVCube stored its own [E, y, x] array as is.
    np.testing.assert_array_equal(cube.data, raw)
    e, y, x = shape[0] // 2, shape[1] // 3, shape[2] // 4
    assert cube.data[e, y, x] == raw[e, y, x]
    # Scheme inference gives the same cube.
    assert FOVCube.read(path).scheme == "bg_cube"


def test_legacy_test1_values_and_meta(shared_data):
    cube = FOVCube.read(shared_data / LEGACY / "bg_cube_model_test1.fits")
    assert cube.meta == {"E_THRES": 0.01}
    assert cube.coordx_edges[0] == -10 * u.deg
    assert cube.energy_edges[0].to_value(u.TeV) == pytest.approx(0.01, rel=1e-12)
    # The test model peaks in the four central pixels (24 x 24 bins over +-10 deg).
    image = cube.data[5]
    assert image[11:13, 11:13].max() == image.max() > 0
    assert image[0, 0] < 1e-3 * image.max()


@pytest.mark.parametrize(
    "name",
    ["bg_cube_model_test2.fits.gz", "bg_cube_model_true.fits.gz", "bg_cube_model_reco.fits.gz"],
)
@pytest.mark.parametrize(
    ("hdu", "column", "scheme", "unit"),
    [
        ("COUNTS", "COUNTS", "bg_counts_cube", ""),
        ("LIVETIME", "LIVETIME", "bg_livetime_cube", "s"),
        ("BACKGROUND", "Bgd", "bg_cube", "1 / (s sr TeV)"),
    ],
)
def test_legacy_model_hdus(shared_data, name, hdu, column, scheme, unit):
    path = shared_data / LEGACY / name
    cube = FOVCube.read(path, hdu=hdu)
    cells, raw = raw_cell(path, hdu, column)
    assert cube.scheme == scheme
    assert cube.unit == u.Unit(unit)
    check_axes(cube, cells)
    np.testing.assert_array_equal(cube.data, raw)


def test_legacy_model_files(shared_data):
    model = FOVCubeBackgroundModel.read(shared_data / LEGACY / "bg_cube_model_test2.fits.gz")
    assert model.time_convention == "LIVETIME"  # the original normalised by livetime
    assert model.counts_cube.scheme == "bg_counts_cube"
    assert model.livetime_cube.unit == u.s
    assert model.background_cube.shape == (10, 20, 20)
    assert float(model.counts_cube.data.sum()) > 0

    only_bg = FOVCubeBackgroundModel.read(shared_data / LEGACY / "bg_cube_model_test1.fits")
    assert only_bg.counts_cube is None and only_bg.livetime_cube is None
    assert only_bg.background_cube.shape == (14, 24, 24)


def test_gadf_file_as_model_is_per_ontime(shared_data):
    model = FOVCubeBackgroundModel.read(hess_files(shared_data)[0])
    assert model.time_convention == "ONTIME"  # GADF rates: Gammapy multiplies by ONTIME
    assert model.counts_cube is None
    assert model.background_cube.shape == (20, 50, 50)


def hess_files(folder):
    return sorted((folder / "hess-dl3-dr1" / "data").glob("*.fits*"))


def test_hess_every_file(shared_data):
    files = hess_files(shared_data)
    assert len(files) == 105
    for path in files:
        cube = FOVCube.read(path, hdu="BKG")
        cells, raw = raw_cell(path, "BKG", "BKG")
        assert cube.shape == (20, 50, 50), path.name
        assert cube.unit == u.Unit("MeV-1 s-1 sr-1"), path.name
        assert cube.scheme == "bg_cube"
        assert cube.meta["FOVALIGN"] == "RADEC"
        assert "HDUCLASS" not in cube.meta  # format keywords are not cube metadata
        check_axes(cube, cells)
        # Stored [E, a, b] with a = DETX (fov_lon), b = DETY, as Gammapy reads it.
        np.testing.assert_array_equal(cube.data, raw.transpose(0, 2, 1), err_msg=path.name)
        assert cube.data.dtype == np.float32
        assert cube.data.dtype.isnative


def test_hess_values(shared_data):
    path = hess_files(shared_data)[0]
    cube = FOVCube.read(path)  # default HDU: the BKG_3D one
    _, raw = raw_cell(path, "BKG", "BKG")
    for e, ix, iy in [(0, 10, 20), (7, 25, 25), (19, 49, 0), (3, 0, 49)]:
        assert cube.data[e, iy, ix] == raw[e, ix, iy]
    # The H.E.S.S. model is not symmetric in DETX <-> DETY, so the orientation matters.
    assert not np.allclose(cube.data, cube.data.transpose(0, 2, 1))


def test_cta_1dc(shared_data):
    path = shared_data / CTA
    cube = FOVCube.read(path, hdu="BACKGROUND")
    cells, raw = raw_cell(path, "BACKGROUND", "BGD")
    assert cube.shape == (21, 36, 36)
    assert cube.scheme == "bg_cube"
    assert cube.unit == u.Unit("1 / (MeV s sr)")  # from '1/s/MeV/sr'
    check_axes(cube, cells)
    np.testing.assert_array_equal(cube.data, raw.transpose(0, 2, 1))
    assert cube.data[10, 18, 18] == raw[10, 18, 18] > 0
    assert cube.meta["TELESCOP"] == "CTA"
    assert cube.meta["CBD50001"] == "ZENITH(20.000)deg"
    assert "HDUCLAS4" not in cube.meta
    # Without hdu=, the BACKGROUND HDU is found among the IRFs.
    assert FOVCube.read(path).shape == (21, 36, 36)


def test_read_on_another_backend(shared_data, xp):
    path = shared_data / LEGACY / "bg_cube_model_test1.fits"
    reference = FOVCube.read(path)
    cube = FOVCube.read(path, backend=xp)
    assert cube.xp.__name__.split(".")[0] in xp.__name__
    np.testing.assert_array_equal(cube.quantity.value, reference.data)

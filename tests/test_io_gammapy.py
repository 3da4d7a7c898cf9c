"""bgcube and Gammapy read the same values from the same files, and Gammapy reads ours."""

import astropy.units as u
import numpy as np
import pytest

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.errors import AmbiguousLayoutWarning

irf = pytest.importorskip("gammapy.irf", reason="gammapy is not importable")
Background3D = irf.Background3D
MapAxis = pytest.importorskip("gammapy.maps").MapAxis

pytestmark = pytest.mark.gammapy

CTA = "cta-1dc/irf_file_South_z20_50h.fits"

#: Gammapy reads units with astropy's FITS parser, which warns about CTA 1DC's unit.
cta_unit_warning = pytest.mark.filterwarnings(
    "ignore:'1/s/MeV/sr' did not parse as fits unit:astropy.units.UnitsWarning"
)


def hess_sample(folder):
    files = sorted((folder / "hess-dl3-dr1" / "data").glob("*.fits*"))
    return files[::15]  # 7 files spread over the release


def assert_agree(cube, bkg):
    """bgcube's [E, y, x] equals Gammapy's [energy, fov_lon, fov_lat] transposed."""
    assert bkg.axes.names == ["energy", "fov_lon", "fov_lat"]
    np.testing.assert_array_equal(cube.data, np.transpose(bkg.data, (0, 2, 1)))
    assert cube.unit == bkg.unit
    # Gammapy's MapAxis recomputes log edges: equal to the last bits only.
    for ours, theirs in (
        (cube.energy_edges, "energy"),
        (cube.coordx_edges, "fov_lon"),
        (cube.coordy_edges, "fov_lat"),
    ):
        np.testing.assert_allclose(
            ours.to_value(bkg.axes[theirs].unit), bkg.axes[theirs].edges.value, rtol=1e-12
        )


def test_hess_read_agrees(shared_data):
    for path in hess_sample(shared_data):
        assert_agree(FOVCube.read(path, hdu="BKG"), Background3D.read(path, hdu="BKG"))


@cta_unit_warning
def test_cta_read_agrees(shared_data):
    path = shared_data / CTA
    assert_agree(FOVCube.read(path), Background3D.read(path, hdu="BACKGROUND"))


def test_orientation_means_the_same_coordinates(shared_data):
    """The value of bin (ix, iy) is what Gammapy evaluates at (DETX, DETY) = centres."""
    path = hess_sample(shared_data)[1]
    cube = FOVCube.read(path)
    bkg = Background3D.read(path, hdu="BKG")
    x, y = cube.image_bin_centers
    e = cube.energy_bin_centers
    for ie, iy, ix in [(2, 10, 30), (5, 40, 7), (9, 25, 26)]:
        value = bkg.evaluate(fov_lon=x[ix], fov_lat=y[iy], energy=e[ie])
        assert value.to_value(cube.unit) == pytest.approx(float(cube.data[ie, iy, ix]), rel=1e-6)


@cta_unit_warning
@pytest.mark.parametrize("name", ["hess", "cta"])
def test_gammapy_reads_our_files(shared_data, tmp_path, name):
    paths = hess_sample(shared_data)[:3] if name == "hess" else [shared_data / CTA]
    for i, path in enumerate(paths):
        cube = FOVCube.read(path)
        original = Background3D.read(path, hdu="BKG" if name == "hess" else "BACKGROUND")
        for out in (tmp_path / f"ours{i}.fits", tmp_path / f"ours{i}.fits.gz"):
            cube.write(out)
            ours = Background3D.read(out)  # Gammapy's default HDU: BACKGROUND
            np.testing.assert_array_equal(ours.data, original.data)
            assert ours.unit == original.unit
            assert ours.fov_alignment.value == "RADEC"
            for axis in ("energy", "fov_lon", "fov_lat"):
                np.testing.assert_array_equal(ours.axes[axis].edges, original.axes[axis].edges)


def asymmetric_cube(nx, ny, ne, dtype=np.float64):
    rng = np.random.default_rng(7)
    return FOVCube(
        np.linspace(-3, 3, nx + 1) * u.deg,
        np.linspace(-2, 2.5, ny + 1) * u.deg,
        np.geomspace(0.1, 100, ne + 1) * u.TeV,
        data=rng.uniform(1e-6, 1e-3, (ne, ny, nx)).astype(dtype),
        scheme="bg_cube",
        meta={"FOVALIGN": "ALTAZ"},
    )


@pytest.mark.parametrize(
    ("nx", "ny", "ne"), [(5, 4, 3), (4, 4, 6), (3, 5, 5), (6, 3, 6), (1, 1, 1), (2, 1, 3)]
)
def test_gammapy_reads_synthetic_cubes(tmp_path, nx, ny, ne):
    cube = asymmetric_cube(nx, ny, ne)
    cube.write(tmp_path / "bkg.fits")
    bkg = Background3D.read(tmp_path / "bkg.fits")
    assert_agree(cube, bkg)
    assert bkg.fov_alignment.value == "ALTAZ"


@pytest.mark.parametrize(("nx", "ny", "ne"), [(5, 4, 3), (4, 4, 6), (6, 3, 6)])
def test_we_read_gammapy_files(tmp_path, nx, ny, ne):
    cube = asymmetric_cube(nx, ny, ne, dtype=np.float32)
    axes = [
        MapAxis.from_edges(cube.energy_edges, name="energy", interp="log"),
        MapAxis.from_edges(cube.coordx_edges, name="fov_lon"),
        MapAxis.from_edges(cube.coordy_edges, name="fov_lat"),
    ]
    bkg = Background3D(axes=axes, data=np.transpose(cube.data, (0, 2, 1)), unit=cube.unit)
    bkg.write(tmp_path / "gammapy.fits")
    read = FOVCube.read(tmp_path / "gammapy.fits")
    np.testing.assert_array_equal(read.data, cube.data)
    assert read.detx_axis == cube.detx_axis and read.dety_axis == cube.dety_axis


def test_ambiguous_energy_axis_agrees_with_gammapy(tmp_path):
    """nE == nDETY: Gammapy takes the transposed array; so do we, with a warning."""
    cube = asymmetric_cube(4, 5, 5)
    cube.write(tmp_path / "bkg.fits")
    from astropy.io import fits

    with fits.open(tmp_path / "bkg.fits") as hdulist:
        del hdulist["BACKGROUND"].header["BGLAYOUT"]  # as a file from another tool
        hdulist.writeto(tmp_path / "foreign.fits")
    with pytest.warns(AmbiguousLayoutWarning):
        ours = FOVCube.read(tmp_path / "foreign.fits")
    assert_agree(ours, Background3D.read(tmp_path / "foreign.fits"))
    np.testing.assert_array_equal(ours.data, cube.data)


def test_gammapy_reads_background_of_model_file(tmp_path):
    model = FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 4) * u.deg,
        np.geomspace(0.1, 100, 4) * u.TeV,
    )
    model.counts_cube.data = np.random.default_rng(3).poisson(4.0, (3, 3, 4)).astype(float)
    model.add_observation_time(3600 * u.s)
    model.compute_rate()
    model.write(tmp_path / "model.fits")
    assert_agree(model.background_cube, Background3D.read(tmp_path / "model.fits"))

"""The lean image writer gives the bytes astropy writes for ``cube_to_image_hdulist``."""

import gzip
import io

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.io.image import cube_to_image_hdulist
from bgcube.io.lean_image import image_file_bytes


def _astropy_bytes(cube):
    buffer = io.BytesIO()
    cube_to_image_hdulist(cube).writeto(buffer)
    return buffer.getvalue()


def _cube(x, y, energy, *, dtype=np.float64, meta=None, scheme="bg_cube", unit="1 / (MeV s sr)"):
    rng = np.random.default_rng(8)
    shape = (len(energy) - 1, len(y) - 1, len(x) - 1)
    data = rng.random(shape).astype(dtype)
    return FOVCube(x, y, energy, data=data, scheme=scheme, unit=unit, meta=meta or {})


def _cubes():
    x = np.linspace(-4, 4, 29) * u.deg
    yield _cube(x, x, np.geomspace(0.1, 100, 13) * u.TeV)
    yield _cube(
        np.linspace(-0.07, 0.07, 11) * u.rad,  # uniform in rad: the WCS in rad
        np.array([-3.0, -1.0, 0.0, 0.5, 2.0]) * u.deg,  # irregular: no DETY WCS
        np.linspace(1, 10, 4) * u.TeV,  # linear energies: ENER
        dtype=np.float32,
        meta={"FOVALIGN": "ALTAZ", "OBS_ID": 23523, "RATE": 1.5e-3, "OK": True, "NOTE": "it's"},
    )
    yield _cube(
        np.linspace(-2, 2, 2) * u.deg,  # one bin
        np.linspace(-2, 2, 5) * u.deg,
        np.array([0.1, 0.3, 2.0, 50.0]) * u.TeV,  # irregular energies: no energy WCS
        scheme="bg_counts_cube",
        unit="",
        meta={"A_LONG_KEYWORD": 2.0, "HISTORY": "made in a test"},
    )
    yield _cube(x, x, np.geomspace(100, 1e5, 5) * u.GeV, meta={"COMMENT": "last card"})


@pytest.mark.parametrize("cube", list(_cubes()), ids=lambda c: f"{c.shape}")
def test_same_bytes_as_astropy(cube):
    ours = image_file_bytes(cube)
    assert ours is not None
    assert ours == _astropy_bytes(cube)


def test_a_card_astropy_refuses_goes_to_astropy(tmp_path):
    x = np.linspace(-1, 1, 3) * u.deg
    cube = _cube(x, x, np.geomspace(1, 10, 3) * u.TeV, meta={"BAD": float("nan")})
    assert image_file_bytes(cube) is None  # astropy's own error, as before
    with pytest.raises(ValueError, match="BAD"):
        cube.write(tmp_path / "bad.fits", format="image")


def test_written_model_image_is_astropys(tmp_path):
    model = FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 9) * u.deg,
        np.linspace(-2, 2, 9) * u.deg,
        np.geomspace(0.1, 100, 6) * u.TeV,
    )
    model.counts_cube.data = np.full(model.counts_cube.shape, 3.0)
    model.livetime_cube.data = np.full(model.counts_cube.shape, 1800.0)
    model.compute_rate()
    path = tmp_path / "model_image.fits.gz"
    model.write(path, format="image")
    from bgcube.io.model import model_to_hdulist

    buffer = io.BytesIO()
    model_to_hdulist(model, "image").writeto(buffer)
    assert gzip.decompress(path.read_bytes()) == buffer.getvalue()
    with fits.open(path) as hdus:
        assert [h.name for h in hdus] == ["PRIMARY", "EBOUNDS", "DETBOUNDS"]

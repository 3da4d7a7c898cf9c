"""Write -> read gives back the same cube: axes, data (bit for bit), unit, scheme and meta."""

import os
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.io.formats import FORMAT_KEYWORDS

SCHEMES = [None, "bg_cube", "bg_counts_cube", "bg_livetime_cube"]
UNITS = ["", "s", "h", "ct", "1 / (MeV s sr)", "1 / (s sr TeV)", "cm-2 s-1"]
#: A background cube holds a rate, a time cube a time (other units are refused).
SCHEME_UNITS = {"bg_cube": ["1 / (MeV s sr)", "1 / (s sr TeV)"], "bg_livetime_cube": ["s", "h"]}
META_KEYS = ["ORIGIN", "E_THRES", "NOBS", "SMOOTHED", "OBSERVER", "ALT_MIN", "A_VERY_LONG_KEYWORD"]
KNOWN_META = {
    "FOVALIGN": st.sampled_from(["RADEC", "ALTAZ", "REVERSE_LON_RADEC"]),
    "BKG_TIME": st.sampled_from(["ONTIME", "LIVETIME"]),
    "SOLIDANG": st.sampled_from(["FLAT", "EXACT"]),
}


@st.composite
def edges(draw, low, high, log=False):
    """Strictly increasing edges, uniform or irregular, 1 to 6 bins."""
    n = draw(st.integers(1, 6))
    lo = draw(st.floats(low, high / 2))
    hi = draw(st.floats(lo + (high - low) / 100, high))
    if draw(st.booleans()):
        values = np.geomspace(lo, hi, n + 1) if log else np.linspace(lo, hi, n + 1)
    else:
        inner = draw(st.lists(st.floats(lo, hi), min_size=n - 1, max_size=n - 1))
        values = np.unique(np.concatenate([[lo, hi], inner]))
        step = np.diff(values)
        if len(values) < 2 or np.any(step <= 1e-9 * (hi - lo)):
            values = np.linspace(lo, hi, n + 1)
    return values


fits_strings = st.text(
    alphabet=st.sampled_from(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.() "
    ),
    max_size=30,
).map(str.rstrip)
meta_values = st.one_of(
    fits_strings,
    st.integers(-(2**40), 2**40),
    # FITS cards hold 20 characters of a float: stay within what survives.
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 6)),
    st.booleans(),
)


@st.composite
def cubes(draw):
    x = draw(edges(-5.0, 5.0))
    y = draw(edges(-5.0, 5.0))
    e = draw(edges(0.01, 300.0, log=True))
    angle_unit = draw(st.sampled_from(["deg", "rad"]))
    energy_unit = draw(st.sampled_from(["TeV", "GeV"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (len(e) - 1, len(y) - 1, len(x) - 1)
    # Any float, NaN and infinities included: the round trip is bit for bit.
    elements = st.floats(width=32 if dtype == np.float32 else 64)
    data = draw(hnp.arrays(dtype, shape, elements=st.one_of(st.just(0.0), elements)))
    meta = draw(st.dictionaries(st.sampled_from(META_KEYS), meta_values, max_size=4))
    meta.update(draw(st.fixed_dictionaries({}, optional=KNOWN_META)))
    return FOVCube(
        u.Quantity(x, "deg").to(angle_unit),
        u.Quantity(y, "deg").to(angle_unit),
        u.Quantity(e, "TeV").to(energy_unit),
        data=data,
        scheme=(scheme := draw(st.sampled_from(SCHEMES))),
        unit=draw(st.sampled_from(SCHEME_UNITS.get(scheme, UNITS))),
        meta=meta,
    )


def assert_same_cube(read, cube, meta):
    assert read.detx_axis == cube.detx_axis
    assert read.dety_axis == cube.dety_axis
    assert read.energy_axis == cube.energy_axis
    assert read.unit == cube.unit
    assert read.scheme == cube.scheme
    assert read.data.dtype == cube.data.dtype
    assert read.backend == "numpy"
    np.testing.assert_array_equal(read.data.view(np.uint8), cube.data.view(np.uint8))
    assert read.meta == meta


def written_meta(cube, legacy=False):
    meta = {k: v for k, v in cube.meta.items() if k not in FORMAT_KEYWORDS}
    if not legacy:
        meta.setdefault("FOVALIGN", "RADEC")
    return meta


def roundtrip(cube, **kwargs):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cube.fits"
        cube.write(path, **kwargs)
        return FOVCube.read(path, format=kwargs.get("format", "table"))


@given(cubes())
def test_table_roundtrip(cube):
    assert_same_cube(roundtrip(cube), cube, written_meta(cube))


@given(cubes())
def test_legacy_table_roundtrip(cube):
    assert_same_cube(roundtrip(cube, legacy=True), cube, written_meta(cube, legacy=True))


@given(cubes())
def test_image_roundtrip(cube):
    assert_same_cube(roundtrip(cube, format="image"), cube, written_meta(cube))


@given(cubes())
def test_in_memory_roundtrips(cube):
    assert_same_cube(FOVCube.from_hdulist(cube.to_hdulist()), cube, written_meta(cube))
    assert_same_cube(FOVCube.from_table(cube.to_table()), cube, written_meta(cube))


def test_table_header_keywords(tmp_path):
    cube = FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 3) * u.deg,
        np.geomspace(0.1, 10, 4) * u.TeV,
        scheme="bg_cube",
        meta={"FOVALIGN": "ALTAZ", "BKG_TIME": "ONTIME", "SOLIDANG": "FLAT"},
    )
    cube.write(tmp_path / "bkg.fits")
    header = fits.getheader(tmp_path / "bkg.fits", "BACKGROUND")
    assert header["HDUCLASS"] == "GADF"
    assert header["HDUDOC"].startswith("https://")
    assert header["HDUVERS"] == "0.2"
    assert (header["HDUCLAS1"], header["HDUCLAS2"], header["HDUCLAS3"], header["HDUCLAS4"]) == (
        "RESPONSE",
        "BKG",
        "FULL-ENCLOSURE",
        "BKG_3D",
    )
    assert header["FOVALIGN"] == "ALTAZ"
    assert header["BKG_TIME"] == "ONTIME" and header["SOLIDANG"] == "FLAT"
    assert header["TTYPE7"] == "BKG"
    assert header["TDIM7"] == "(3,4,2)"  # (nE, nDETX, nDETY), as Gammapy writes
    assert u.Unit(header["TUNIT7"], format="fits") == u.Unit("1 / (MeV s sr)")


def test_legacy_table_layout(tmp_path):
    cube = FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 3) * u.deg,
        np.geomspace(0.1, 10, 4) * u.TeV,
        scheme="bg_cube",
    )
    cube.write(tmp_path / "old.fits", legacy=True)
    header = fits.getheader(tmp_path / "old.fits", "BACKGROUND")
    assert header["TTYPE7"] == "Bgd"
    assert header["TDIM7"] == "(4,2,3)"  # the original FOVCube's (nx, ny, nE)
    assert "HDUCLASS" not in header and "FOVALIGN" not in header


def test_image_is_ds9_friendly(tmp_path):
    from astropy.wcs import WCS

    cube = FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-3, 3, 4) * u.deg,
        np.geomspace(0.1, 100, 4) * u.TeV,
        scheme="bg_cube",
    )
    cube.write(tmp_path / "image.fits", format="image")
    with fits.open(tmp_path / "image.fits") as hdulist:
        assert [h.name for h in hdulist] == ["PRIMARY", "EBOUNDS", "DETBOUNDS"]
        header = hdulist[0].header
        assert hdulist[0].data.shape == (3, 3, 4)
        assert (header["CTYPE1"], header["CTYPE2"], header["CTYPE3"]) == (
            "DETX",
            "DETY",
            "ENER-LOG",
        )
        wcs = WCS(header)
        x, y, e = wcs.pixel_to_world_values([0, 3], [0, 2], [0, 2])
        np.testing.assert_allclose(x, cube.detx_axis.centers.to_value("deg")[[0, 3]])
        np.testing.assert_allclose(y, cube.dety_axis.centers.to_value("deg")[[0, 2]])
        # WCS spectral values are SI: J.
        np.testing.assert_allclose(e, cube.energy_axis.centers.to_value("J")[[0, 2]])
        np.testing.assert_array_equal(hdulist["EBOUNDS"].data["E_MAX"], cube.energy_edges.value[1:])


def test_image_with_irregular_edges_has_no_spatial_wcs(tmp_path):
    cube = FOVCube(
        [-2, -1, 0.5, 2] * u.deg,
        np.linspace(-3, 3, 4) * u.deg,
        [0.1, 0.3, 5, 100] * u.TeV,
        scheme="bg_cube",
    )
    cube.write(tmp_path / "image.fits", format="image")
    header = fits.getheader(tmp_path / "image.fits")
    assert "CTYPE1" not in header and header["CTYPE2"] == "DETY" and "CTYPE3" not in header
    read = FOVCube.read(tmp_path / "image.fits", format="image")
    assert read.detx_axis == cube.detx_axis and read.energy_axis == cube.energy_axis


def test_old_image_without_detbounds(tmp_path):
    """Images of the original FOVCube: edges from the linear WCS, EBOUNDS as one ENERGY column."""
    cube = FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-3, 3, 4) * u.deg,
        np.geomspace(0.1, 100, 4) * u.TeV,
        data=np.arange(36.0).reshape(3, 3, 4),
    )
    hdulist = cube.to_hdulist("image")
    del hdulist["DETBOUNDS"]
    header = hdulist[0].header
    header["DATAUNIT"] = header.pop("BUNIT")
    energy = fits.BinTableHDU.from_columns(
        [fits.Column("ENERGY", "D", unit="TeV", array=cube.energy_edges.value)], name="EBOUNDS"
    )
    hdulist["EBOUNDS"] = energy
    hdulist.writeto(tmp_path / "old.fits")
    read = FOVCube.read(tmp_path / "old.fits", format="image")
    np.testing.assert_allclose(read.coordx_edges.value, cube.coordx_edges.value, atol=1e-12)
    np.testing.assert_allclose(read.coordy_edges.value, cube.coordy_edges.value, atol=1e-12)
    np.testing.assert_array_equal(read.energy_edges, cube.energy_edges)
    np.testing.assert_array_equal(read.data, cube.data)


def test_gz_name_writes_gzip(tmp_path):
    cube = FOVCube(
        np.linspace(-2, 2, 3) * u.deg,
        np.linspace(-2, 2, 3) * u.deg,
        np.geomspace(0.1, 10, 3) * u.TeV,
        scheme="bg_cube",
    )
    for fmt in ("table", "image"):
        path = tmp_path / f"{fmt}.fits.gz"
        cube.write(path, format=fmt)
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        assert FOVCube.read(path, format=fmt).energy_axis == cube.energy_axis


def test_write_from_another_backend(tmp_path, xp):
    cube = FOVCube(
        np.linspace(-2, 2, 3) * u.deg,
        np.linspace(-2, 2, 4) * u.deg,
        np.geomspace(0.1, 10, 3) * u.TeV,
        data=np.arange(12.0).reshape(2, 3, 2),
        scheme="bg_cube",
        backend=xp,
    )
    cube.write(tmp_path / "bkg.fits")
    read = FOVCube.read(tmp_path / "bkg.fits")
    assert read.backend == "numpy"
    np.testing.assert_array_equal(read.data, np.arange(12.0).reshape(2, 3, 2))


# ----------------------------------------------------------------------
def filled_model(time_convention="ONTIME"):
    model = FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 4) * u.deg,
        np.geomspace(0.1, 100, 4) * u.TeV,
        time_convention=time_convention,
    )
    rng = np.random.default_rng(1)
    model.counts_cube.data = rng.poisson(5.0, model.counts_cube.shape).astype(float)
    model.add_observation_time(1800 * u.s)
    model.compute_rate()
    return model


@pytest.mark.parametrize("convention", ["ONTIME", "LIVETIME"])
@pytest.mark.parametrize("legacy", [False, True])
def test_model_roundtrip(tmp_path, convention, legacy):
    model = filled_model(convention)
    path = tmp_path / "model.fits.gz"
    model.write(path, legacy=legacy)
    with fits.open(path) as hdulist:
        assert [h.name for h in hdulist] == ["PRIMARY", "COUNTS", "LIVETIME", "BACKGROUND"]
        assert hdulist["BACKGROUND"].header["BKG_TIME"] == convention
        assert hdulist["LIVETIME"].header["BKG_TIME"] == convention
    read = FOVCubeBackgroundModel.read(path)
    assert read.time_convention == convention
    for name in ("counts_cube", "livetime_cube", "background_cube"):
        original, back = getattr(model, name), getattr(read, name)
        assert back.scheme == original.scheme
        assert back.unit == original.unit
        assert back.detx_axis == original.detx_axis
        np.testing.assert_array_equal(back.data, original.data)


def test_model_with_empty_counts_writes_background_only(tmp_path):
    model = filled_model()
    model.counts_cube.data = model.counts_cube.data * 0
    model.write(tmp_path / "model.fits")
    with fits.open(tmp_path / "model.fits") as hdulist:
        assert [h.name for h in hdulist] == ["PRIMARY", "BACKGROUND"]
    read = FOVCubeBackgroundModel.read(tmp_path / "model.fits")
    assert read.counts_cube is None and read.livetime_cube is None
    assert read.time_convention == "ONTIME"
    np.testing.assert_array_equal(read.background_cube.data, model.background_cube.data)


def test_model_image_format(tmp_path):
    model = filled_model("LIVETIME")
    model.write(tmp_path / "model_image.fits", format="image")
    read = FOVCubeBackgroundModel.read(tmp_path / "model_image.fits", format="image")
    assert read.time_convention == "LIVETIME"
    assert read.background_cube.scheme == "bg_cube"
    np.testing.assert_array_equal(read.background_cube.data, model.background_cube.data)


def test_model_without_background_cannot_be_written(tmp_path):
    model = FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 3) * u.deg,
        np.linspace(-2, 2, 3) * u.deg,
        np.geomspace(0.1, 10, 3) * u.TeV,
    )
    model.background_cube = None
    with pytest.raises(ValueError, match="compute_rate"):
        model.write(tmp_path / "model.fits")
    assert os.listdir(tmp_path) == []


def test_model_read_on_backend(tmp_path, xp):
    filled_model().write(tmp_path / "model.fits")
    read = FOVCubeBackgroundModel.read(tmp_path / "model.fits", backend=xp)
    assert read.background_cube.xp.__name__.split(".")[0] in xp.__name__

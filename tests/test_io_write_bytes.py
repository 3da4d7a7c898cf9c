"""`hdulist_bytes` writes exactly the bytes astropy's ``HDUList.writeto`` writes.

It serialises plain numeric binary tables itself (astropy byte-swaps long
vector columns element by element in Python); anything else goes to
astropy. Either way the file must be the same, byte for byte.
"""

import gzip
import io

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from bgcube import FOVCubeBackgroundModel
from bgcube.io.files import _is_plain_table, hdulist_bytes, write_hdulist
from bgcube.io.model import model_to_hdulist


def astropy_bytes(hdulist):
    buffer = io.BytesIO()
    hdulist.writeto(buffer)
    return buffer.getvalue()


def small_model():
    rng = np.random.default_rng(3)
    model = FOVCubeBackgroundModel.set_cube_binning(
        Angle(np.linspace(-2, 2, 9), u.deg),
        Angle(np.linspace(-2, 3, 11), u.deg),
        np.geomspace(0.1, 100, 6) * u.TeV,
    )
    model.counts_cube.data = rng.poisson(5.0, model.counts_cube.shape).astype(float)
    model.livetime_cube.data = np.full(model.counts_cube.shape, 1800.0)
    model.compute_rate()
    return model


def test_model_files_are_astropys_bytes():
    model = small_model()
    table = model_to_hdulist(model, "table")
    assert all(_is_plain_table(hdu) for hdu in table[1:])  # the fast path runs
    assert hdulist_bytes(table) == astropy_bytes(model_to_hdulist(model, "table"))
    image = model_to_hdulist(model, "image")
    assert hdulist_bytes(image) == astropy_bytes(model_to_hdulist(model, "image"))


def test_written_gzip_file_reads_back(tmp_path):
    model = small_model()
    path = tmp_path / "model.fits.gz"
    write_hdulist(model_to_hdulist(model, "table"), path)
    assert gzip.decompress(path.read_bytes()) == astropy_bytes(model_to_hdulist(model, "table"))
    back = FOVCubeBackgroundModel.read(path)
    np.testing.assert_array_equal(back.counts_cube.data, model.counts_cube.data)


NUMERIC = {
    "B": np.uint8,
    "I": np.int16,
    "J": np.int32,
    "K": np.int64,
    "E": np.float32,
    "D": np.float64,
}


@st.composite
def numeric_tables(draw):
    """Binary tables of 0-5 rows and 1-4 numeric columns, scalar, vector or with TDIM."""
    n_rows = draw(st.integers(0, 5))
    columns = []
    for k in range(draw(st.integers(1, 4))):
        code = draw(st.sampled_from(sorted(NUMERIC)))
        shape = draw(st.sampled_from([(), (3,), (2, 3), (4, 1, 2)]))
        values = np.arange(n_rows * int(np.prod(shape)), dtype=np.float64).reshape(n_rows, *shape)
        array = (values * draw(st.sampled_from([1, 3, 7])) % 120).astype(NUMERIC[code])
        repeat = int(np.prod(shape))
        dim = "(" + ",".join(map(str, shape[::-1])) + ")" if len(shape) > 1 else None
        columns.append(
            fits.Column(
                name=f"C{k}",
                format=f"{repeat if shape else ''}{code}",
                dim=dim,
                unit=draw(st.sampled_from(["", "deg", "s"])),
                array=array,
            )
        )
    return columns


@given(tables=st.lists(numeric_tables(), min_size=1, max_size=3))
def test_numeric_tables_are_astropys_bytes(tables):
    def make():
        return fits.HDUList(
            [
                fits.PrimaryHDU(),
                *(fits.BinTableHDU.from_columns(c, name=f"T{i}") for i, c in enumerate(tables)),
            ]
        )

    assert hdulist_bytes(make()) == astropy_bytes(make())


@pytest.mark.parametrize(
    "column",
    [
        fits.Column(name="FLAG", format="L", array=np.array([True, False])),
        fits.Column(name="NAME", format="5A", array=np.array(["ab", "cdefg"])),
        fits.Column(name="UINT", format="I", bzero=32768, array=np.array([1, 60000], np.uint16)),
        fits.Column(
            name="VAR", format="PD()", array=np.array([np.ones(2), np.ones(3)], dtype=object)
        ),
    ],
)
def test_other_columns_go_to_astropy(column):
    def make():
        return fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([column])])

    assert not _is_plain_table(make()[1])
    assert hdulist_bytes(make()) == astropy_bytes(make())


def test_a_table_out_of_step_with_its_header_goes_to_astropy():
    """A header whose row count disagrees with the data: astropy's writer decides."""

    def make():
        hdu = fits.BinTableHDU.from_columns([fits.Column(name="A", format="D", array=[1.0, 2.0])])
        hdu.header["NAXIS2"] = 7
        return fits.HDUList([fits.PrimaryHDU(), hdu])

    assert not _is_plain_table(make()[1])
    assert hdulist_bytes(make()) == astropy_bytes(make())
    assert hdulist_bytes(fits.HDUList([fits.PrimaryHDU()])) == astropy_bytes(
        fits.HDUList([fits.PrimaryHDU()])
    )


META = [
    {},
    {"OBJECT": "it's a 'test'", "N_RUNS": 12, "FLAG": True, "OFF": np.False_},
    {"RATIO": 1.5, "TINY": 1e-300, "BIG": 123456789.0, "NEG": -0.25, "NPINT": np.int64(7)},
    {"A_VERY_LONG_KEYWORD": 3, "NONE": None, "LONGTEXT": "x" * 90, "EMPTY": ""},
    {"FOVALIGN": "ALTAZ", "HDUCLASS": "ignored", "BGLAYOUT": "ignored", "EXTNAME": "ignored"},
    # what a joint build's per-run BKG_3D file holds: HIERARCH, floats, a long COMMENT
    {
        "BKG_MODEL": "JOINT",
        "BKG_NGHT": -0.010181899131511567,
        "BKG_NORM": 1.0,
        "OBS_ID": 20136,
        "F32": np.float32(0.1),
        "COMMENT": "DETX is fov_lon WITHOUT Gammapy's sign flip " * 3,
    },
    {"HISTORY": "short", "comment": "x", "BIGFLOAT": 1.2345678901234567e300, "NEGZERO": -0.0},
    # a HIERARCH card one character too long for its blank before '=', and one that fits
    {"K" * 59: "abcdefgh", "Q" * 66: 1.5, "Z" * 65: 2, "HIERARCH_LONGER_STRING": "y" * 50},
]


@pytest.mark.parametrize("meta", META)
@pytest.mark.parametrize("legacy", [False, True])
def test_table_files_are_written_without_hdu_objects_in_astropys_bytes(tmp_path, meta, legacy):
    """write_model's table path (bgcube.io.lean_write) against astropy's HDUs, byte for byte."""
    from bgcube.io.model import write_model

    model = small_model()
    for cube in model._cubes().values():
        cube.meta.update(meta)
    path = tmp_path / "model.fits"
    write_model(model, path, "table", legacy=legacy)
    assert path.read_bytes() == astropy_bytes(model_to_hdulist(model, "table", legacy=legacy))
    model.counts_cube.data = model.counts_cube.data.astype(np.float32) * 0  # background only
    write_model(model, path, "table", overwrite=True, legacy=legacy)
    assert path.read_bytes() == astropy_bytes(model_to_hdulist(model, "table", legacy=legacy))


def test_a_meta_value_no_header_holds_is_named_as_before(tmp_path):
    from bgcube.io.model import write_model

    model = small_model()
    model.background_cube.meta["BAD"] = [1, 2]
    with pytest.raises(ValueError, match="meta keyword 'BAD'") as lean:
        write_model(model, tmp_path / "m.fits", "table")
    with pytest.raises(ValueError, match="meta keyword 'BAD'") as old:
        model_to_hdulist(model, "table")
    assert str(lean.value) == str(old.value)


@pytest.mark.parametrize("meta", META)
def test_per_run_bkg_3d_file_bytes_are_astropys(meta):
    """The bytes of a per-run BKG_3D file (bgcube.io.lean_write.cube_file_bytes) are
    those astropy writes for the same cube (`bgcube.io.files.cube_to_hdulist`)."""
    from bgcube.io.files import cube_to_hdulist
    from bgcube.io.lean_write import cube_file_bytes

    cube = small_model().background_cube
    cube.meta.update({"FOVALIGN": "REVERSE_LON_RADEC", "BKG_TIME": "ONTIME", **meta})
    assert bytes(cube_file_bytes(cube)) == astropy_bytes(cube_to_hdulist(cube, "table"))
    cube.data = cube.data.astype(np.float32)
    assert bytes(cube_file_bytes(cube)) == astropy_bytes(cube_to_hdulist(cube, "table"))


@pytest.mark.parametrize("value", [np.nan, np.inf, 1 + 2j, [1, 2]])
def test_a_value_no_card_holds_gives_astropys_error(value):
    from bgcube.io.files import cube_to_hdulist
    from bgcube.io.lean_write import cube_file_bytes

    cube = small_model().background_cube
    cube.meta["ODD"] = value
    try:
        expected = astropy_bytes(cube_to_hdulist(cube, "table"))
    except Exception as exc:  # astropy refuses it: the lean writer too, in the same words
        with pytest.raises(type(exc)) as lean:
            cube_file_bytes(cube)
        assert str(lean.value) == str(exc)
    else:
        assert bytes(cube_file_bytes(cube)) == expected


def test_per_run_file_headers_need_no_astropy_header(monkeypatch):
    """The cards of a joint build's per-run file (HIERARCH, floats, COMMENT) are
    formatted by the lean writer itself; its bytes are still astropy's."""
    from bgcube.io import lean_write
    from bgcube.io.files import cube_to_hdulist

    cube = small_model().background_cube
    cube.meta.update(META[5])
    expected = astropy_bytes(cube_to_hdulist(cube, "table"))
    with monkeypatch.context() as patch:
        patch.setattr(lean_write.fits, "Header", None)  # any use of it would fail
        data = lean_write.cube_file_bytes(cube)
    assert bytes(data) == expected


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("meta", META[:2] + META[5:6])
def test_cube_table_files_are_astropys_bytes(tmp_path, legacy, meta):
    """FOVCube.write(format='table') writes what astropy writes for cube_to_hdulist."""
    from bgcube.io.files import cube_to_hdulist

    cube = small_model().background_cube
    cube.meta.update(meta)
    cube.write(tmp_path / "c.fits", format="table", legacy=legacy)
    expected = astropy_bytes(cube_to_hdulist(cube, "table", legacy=legacy))
    assert (tmp_path / "c.fits").read_bytes() == expected
    cube.write(tmp_path / "c.fits.gz", format="table", legacy=legacy)
    assert gzip.decompress((tmp_path / "c.fits.gz").read_bytes()) == expected

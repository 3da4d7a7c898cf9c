"""Fixed-length vector columns (TFORM ``rE``, TDIM) in the lean reader, against astropy."""

import gzip
import warnings

import numpy as np
import pytest
from astropy.io import fits

from bgcube.io import lean_fits
from bgcube.io.lean_fits import read_header, read_table_hdu

RNG = np.random.default_rng(3)
COLUMNS = {  # name: (TFORM, TDIM or None, values of 4 rows)
    "SCALAR": ("E", None, RNG.normal(size=4).astype(np.float32)),
    "VEC_E": ("7E", None, RNG.normal(size=(4, 7)).astype(np.float32)),
    "VEC_D": ("12D", "(4,3)", RNG.normal(size=(4, 3, 4))),
    "CUBE_D": ("24D", "(2,3,4)", RNG.normal(size=(4, 4, 3, 2))),
    "VEC_J": ("3J", None, RNG.integers(-9, 9, size=(4, 3)).astype(np.int32)),
    "VEC_K": ("6K", "(3,2)", RNG.integers(-9, 9, size=(4, 2, 3)).astype(np.int64)),
    "VEC_I": ("2I", None, RNG.integers(-9, 9, size=(4, 2)).astype(np.int16)),
    "VEC_B": ("5B", None, RNG.integers(0, 255, size=(4, 5)).astype(np.uint8)),
}


def _write(path, columns=COLUMNS, compress=True):
    cols = [
        fits.Column(name, tform, dim=dim, array=values)
        for name, (tform, dim, values) in columns.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="TABLE")
    data = io_bytes(fits.HDUList([fits.PrimaryHDU(), hdu]))
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def io_bytes(hdulist):
    import io

    buffer = io.BytesIO()
    hdulist.writeto(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", [True, False])
def test_vector_columns_equal_astropys(tmp_path, compress):
    path = _write(tmp_path / ("t.fits.gz" if compress else "t.fits"), compress=compress)
    lean = read_table_hdu(path, "TABLE", list(COLUMNS), read_ahead=False)
    assert lean is not None
    with fits.open(path) as hdus:
        ref = hdus["TABLE"].data
        for name in COLUMNS:
            got, expected = lean.data.field(name), ref.field(name)
            assert got.shape == expected.shape, name
            assert got.dtype == expected.dtype, name
            np.testing.assert_array_equal(got, expected)
            assert got[0].shape == expected[0].shape  # one row's cell, as astropy gives it


def _patch_card(path, keyword, value):
    """The file with the value of ``keyword``'s card replaced (cards kept in place)."""
    data = bytearray(gzip.decompress(path.read_bytes()))
    at = data.index(f"{keyword:8}= ".encode(), 2880)
    data[at : at + 80] = f"{keyword:8}= {value:20}".ljust(80).encode()
    out = path.with_name(f"patched_{keyword}.fits.gz")
    out.write_bytes(gzip.compress(bytes(data)))
    return out


@pytest.mark.parametrize(
    "tdim", ["'(4,4)'", "'(4,3'", "'(0,3)'", "'4,3'", "12", "'(24)'", "'(2,2,2)'"]
)
def test_a_tdim_that_does_not_hold_the_column_is_left_to_astropy(tmp_path, tdim):
    path = _patch_card(_write(tmp_path / "t.fits.gz"), "TDIM3", tdim)  # VEC_D, 12 values
    assert read_table_hdu(path, "TABLE", ("VEC_D",)) is None
    table = read_table_hdu(path, "TABLE", ("VEC_E",))  # other columns: still lean
    assert table is not None
    with pytest.raises(KeyError):
        table.data.field("VEC_D")
    from bgcube.io import prefetch

    prefetch._returned.clear()  # the file given back for astropy's read


def test_a_header_read_alone_is_astropys(tmp_path):
    path = _write(tmp_path / "t.fits.gz")
    header = read_header(path, "table")
    with fits.open(path) as hdus:
        assert header["TDIM3"] == hdus["TABLE"].header["TDIM3"]
        assert header["NAXIS1"] == hdus["TABLE"].header["NAXIS1"]
    assert read_header(path, 1)["EXTNAME"] == "TABLE"
    assert read_header(path, "NOPE") is None
    assert read_header(tmp_path / "missing.fits", "TABLE") is None


def test_values_of_a_tdim_astropy_ignores_are_astropys(tmp_path):
    """A TDIM needing more values than the column has: astropy ignores it (with a
    warning); the lean reader does not read such a column, so the answer stays astropy's."""
    path = _patch_card(_write(tmp_path / "t.fits.gz"), "TDIM3", "'(5,3)'")
    assert read_table_hdu(path, "TABLE", ("VEC_D",)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(path) as hdus:
            assert hdus["TABLE"].data.field("VEC_D").shape == (4, 12)
    assert lean_fits._cell_shape(12, "(5,3)") is None
    assert lean_fits._cell_shape(12, "(4,3)") == (3, 4)
    assert lean_fits._cell_shape(12, None) == (12,)
    assert lean_fits._cell_shape(1, None) == ()
    assert lean_fits._cell_shape(1, "(1)") is None
    assert lean_fits._cell_shape(0, None) is None


def test_a_read_outside_the_build_leaves_the_read_ahead_alone(tmp_path):
    """``read_ahead=False`` (the effective-area reads) does not change how far the
    read-ahead decompresses the next event files."""
    from bgcube.io import prefetch

    path = _write(tmp_path / "t.fits.gz")
    before = prefetch._needed[0]
    try:
        prefetch.note_needed(123)
        assert read_table_hdu(path, "TABLE", read_ahead=False) is not None
        assert prefetch._needed[0] == 123
        assert read_table_hdu(path, "TABLE") is not None
        assert prefetch._needed[0] > 2880  # through the table's data
    finally:
        prefetch.note_needed(before)

"""The lean FITS table writer gives ``table_to_hdu``'s bytes, and leaves other tables to astropy."""

import io
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Column, MaskedColumn, QTable, Table

from bgcube.io.lean_table import table_hdu_bytes
from bgcube.io.lean_write import primary_hdu_bytes


def _astropy_bytes(table):
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(buffer)
    return buffer.getvalue()


def _tables():
    rng = np.random.default_rng(4)
    n = 7
    t = Table(
        {
            "OBS_ID": np.arange(n, dtype=np.int64) + 20000,
            "I32": np.arange(n, dtype=np.int32) - 3,
            "I16": np.arange(n, dtype=np.int16),
            "U8": np.arange(n, dtype=np.uint8),
            "RA_PNT": rng.uniform(0, 360, n).astype(np.float32) * u.deg,
            "TSTART": rng.uniform(0, 1e8, n) * u.s,
            "RATE": rng.random(n) * u.Unit("1 / (MeV s sr)"),
            "AREA": rng.random(n) * u.m**2,
            "FLAG": rng.random(n) > 0.5,
            "OBJECT": ["Crab", "", "PKS 2155-304", "a", " b", "x" * 30, "MSH 15-52"],
            "BYTES": np.array([b"ab", b"", b"c", b"d", b"e", b"f", b"g"]),
            "X": [np.nan, np.inf, -np.inf, -0.0, 1e-300, 1e17, 0.1],
        }
    )
    t.meta.update(
        {
            "EXTNAME": "OBS_INDEX",
            "MJDREFI": 51910,
            "MJDREFF": 0.000742870370370241,
            "TIMESYS": "TT",
            "FLAG": True,
            "LONGSTR": "a long value " * 10,
            "comments": ["first comment", "second " * 20],
            "AFTER": "a keyword after the comments",
            "history": ["made by a test"],
            "LAST": 1,
        }
    )
    yield t
    yield Table({"A": [1.0]})
    yield Table({"A": np.zeros(0)}, meta={"EXTNAME": "EMPTY"})
    yield Table({"HDU_TYPE": ["events", "gti", "aeff"], "FILE_NAME": ["a.fits", "b", "c.gz"]})
    masked = Table({"A": [1, 2, 3], "B": MaskedColumn([1.5, 2.5, 3.5], mask=[False, True, False])})
    masked["B"].unit = u.deg
    yield masked
    own_fill = Table({"B": MaskedColumn(np.float32([1.5, 2.5]), mask=[True, False], fill_value=-1)})
    yield own_fill


@pytest.mark.parametrize("table", list(_tables()), ids=lambda t: ",".join(t.colnames)[:40])
def test_same_bytes_as_astropy(table):
    ours = table_hdu_bytes(table)
    assert ours is not None
    assert primary_hdu_bytes() + ours == _astropy_bytes(table)


def test_same_bytes_with_a_hierarch_keyword():
    table = Table({"A": [1.0]}, meta={"LONGKEYWORD": 3.5})
    with pytest.warns(fits.verify.VerifyWarning):
        ours = table_hdu_bytes(table)
    with pytest.warns(fits.verify.VerifyWarning):
        theirs = _astropy_bytes(table)
    assert primary_hdu_bytes() + ours == theirs


def test_same_bytes_for_a_dr1_run_table(shared_data):
    index = shared_data / "hess-dl3-dr1" / "obs-index.fits.gz"
    if not index.is_file():
        pytest.skip(f"no {index}")
    for hdu in ("OBS_INDEX",):
        table = Table.read(index, hdu=hdu)
        ours = table_hdu_bytes(table)
        assert ours is not None
        assert primary_hdu_bytes() + ours == _astropy_bytes(table)


def _others():
    yield QTable({"A": [1.0] * u.deg})
    yield Table({"A": MaskedColumn([1, 2], mask=[True, False])})
    yield Table({"A": MaskedColumn(["a", "b"], mask=[True, False])})
    yield Table({"A": Column([1.0], format="%.3f")})
    yield Table({"A": Column([1.0], meta={"k": 1})})
    yield Table({"A": np.zeros((2, 3))})
    yield Table({"A": np.array([1], dtype=np.uint32)})
    yield Table({"A": np.array([1 + 1j])})
    yield Table({"A": ["é"]})
    yield Table({"A": ["trailing blank "]})
    yield Table({"A": [b"trailing blank "]})
    yield Table({"A": [1.0]}, meta={"TTYPE1": "x"})
    yield Table({"A": [1.0]}, meta={"NAXIS": 3})
    yield Table({"A": [1.0]}, meta={"K": {"nested": 1}})
    yield Table({"A": [1.0]}, meta={"K": "é"})
    yield Table({"A": [1.0] * u.Unit("2 deg")})
    yield Table()


@pytest.mark.parametrize("table", list(_others()), ids=lambda t: str(t.dtype)[:40] or "empty")
def test_other_tables_go_to_astropy(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert table_hdu_bytes(table) is None

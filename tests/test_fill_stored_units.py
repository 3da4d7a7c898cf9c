"""Binning columns in their stored unit, and table rows copied out in one pass.

A column in another unit (energy in GeV, angles in arcmin) is binned against
the edges moved to its unit (`bgcube.array._stored_edges`): the counts must
be exactly those of converting it first (``float64(v) * factor``, rounded
once to the column's type). Columns interleaved in rows with nothing left
to convert are copied out of the rows in one pass.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgcube.array import Binning
from bgcube.array._stored_edges import stored_binning, thresholds

numba_fill = pytest.importorskip(
    "bgcube.array._numba_fill", reason="numba not installed: the compiled NumPy path is off"
)

E_EDGES = np.geomspace(0.1, 100, 21)
DET_EDGES = np.linspace(-3, 3, 61)
GEV, ARCMIN, MEV = 1e-3, 1 / 60, 1e-6


def _converted(values, factor):
    """Converting first, as the public path always has."""
    values = np.asarray(values)
    dtype = np.float32 if values.dtype.itemsize == 4 else np.float64
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return (values.astype(np.float64) * factor).astype(dtype)


def _check_thresholds(edges, factor, dtype):
    """Each threshold is a value of ``dtype`` reaching its edge once converted, and the
    value below it does not."""
    t = thresholds(edges, factor, dtype)
    values = t.astype(dtype)
    assert np.array_equal(values.astype(np.float64), t)
    assert np.all(_converted(values, factor).astype(np.float64) >= edges)
    with np.errstate(over="ignore"):  # below -max is -inf
        below = np.nextafter(values, np.array(-np.inf, dtype=dtype))
    assert np.all(_converted(below, factor).astype(np.float64) < edges)
    return t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("factor", [GEV, MEV, ARCMIN, 1 / 3600, 0.3, 1.0])
def test_thresholds_are_the_least_values_reaching_each_edge(dtype, factor):
    """Edges of the usual axes, zero, tiny and huge ones of both signs."""
    edges = np.concatenate(
        [E_EDGES, DET_EDGES, [0.0, 1e-300, -1e-300, 1e-40, -1e-40, 3e38, -3e38, 1e300, -1e300]]
    )
    if dtype == np.float32:
        edges = edges[np.abs(edges) < 1e38]
    _check_thresholds(edges, factor, dtype)


@settings(max_examples=100, deadline=None)
@given(
    edge=st.floats(allow_nan=False, allow_infinity=False),
    factor=st.floats(min_value=1e-12, max_value=1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_thresholds_random(edge, factor, dtype):
    """Any finite edge and factor in (0, 1]: the least value, or None out of reach."""
    t = thresholds([edge], factor, dtype)
    if t is None:  # beyond the largest value once converted
        top = np.array([np.finfo(dtype).max], dtype=dtype)
        assert _converted(top, factor).astype(np.float64)[0] < edge
    else:
        _check_thresholds([edge], factor, dtype)


def test_stored_binning():
    """Same kind and number of bins; None where it cannot make a binning."""
    log = Binning.from_edges(E_EDGES)
    moved = stored_binning(log, GEV, "float32")
    assert moved.kind == "log" and moved.nbin == 20
    assert moved.edges[0] == 100.0 and moved.edges[-1] == 100_000.0
    assert stored_binning(Binning.from_edges(DET_EDGES), ARCMIN, "float64").kind == "linear"
    assert stored_binning(log, 57.3, "float32") is None  # could overflow: stays converted
    assert stored_binning(log, -1e-3, "float64") is None
    # two edges on one threshold: no binning (converting keeps the empty bin)
    close = Binning((1.0, 1.0 + 1e-12, 1.0 + 2e-12, 2.0))  # between two float32 values
    assert stored_binning(close, 1.0, "float32") is None
    assert stored_binning(close, 1.0, "float64").edges == close.edges
    assert stored_binning(Binning((1.0, 1e38)), 1e-3, "float32") is None  # out of reach


def _axes(dtype):
    return tuple(
        Binning.from_edges(np.asarray(e, dtype).astype(np.float64))
        for e in (E_EDGES, DET_EDGES, DET_EDGES)
    )


def _stored(edges, factor, dtype, rng, n):
    """Stored values on and next to every edge once converted, random ones, NaN and inf."""
    start = (np.asarray(edges, np.float64) / factor).astype(dtype)
    near = [start]
    for _ in range(3):
        near.append(np.nextafter(near[-1], np.array(np.inf, dtype)))
        near.insert(0, np.nextafter(near[0], np.array(-np.inf, dtype)))
    lo, hi = edges[0] / factor, edges[-1] / factor
    spread = rng.uniform(lo - 0.1 * abs(lo), hi + 0.1 * abs(hi), n).astype(dtype)
    values = np.concatenate([*near, spread])[:n]
    rng.shuffle(values)
    values[::89] = np.nan
    values[5::97] = np.inf
    return values


def test_other_units_read_by_the_plain_kernel():
    """Contiguous columns in GeV and arcmin go to the kernel of canonical columns, with the
    axes moved: the counts and dropped events of converting first."""
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        axes = _axes(dtype)
        factors = (GEV, ARCMIN, 1.0)
        n = 5 * numba_fill.BLOCK + 3
        stored = [_stored(a.edges, f, dtype, rng, n) for a, f in zip(axes, factors, strict=True)]
        converted = [_converted(v, f) for v, f in zip(stored, factors, strict=True)]
        weights = rng.uniform(0, 2, n)
        expected = numba_fill.fill(*converted, axes, weights, count_nonfinite=True)
        with mock.patch.object(numba_fill, "_fill_range", wraps=numba_fill._fill_range) as plain:
            got = numba_fill.fill(*stored, axes, weights, count_nonfinite=True, factors=factors)
        assert plain.call_count == 1
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1] == expected[1] > 0


def _rows(columns, layout):
    """The columns interleaved in one record array, as astropy reads FITS rows."""
    byte_order, pad = {"big": (">", "i1"), "native": ("=", "i2"), "wide": (">", "S9")}[layout]
    fields = [("pad", pad)]
    for k, c in enumerate(columns):
        fields += [(f"c{k}", c.dtype.newbyteorder(byte_order)), (f"x{k}", "i1")]
    rows = np.zeros(len(columns[0]), dtype=fields)
    for k, c in enumerate(columns):
        rows[f"c{k}"] = c
    return [rows[f"c{k}"] for k in range(len(columns))]


@pytest.mark.parametrize("layout", ["big", "native", "wide"])
@pytest.mark.parametrize("dtypes", [("f4", "f4", "f4"), ("f8", "f8", "f8"), ("f4", "f8", "f4")])
@pytest.mark.parametrize("threads", [1, 3])
def test_rows_copied_in_one_pass(layout, dtypes, threads):
    """Strided columns (rows of 10 to 30 bytes, odd offsets, either byte order, mixed
    types) in GeV, arcmin and deg, across blocks and tasks: the counts and dropped
    events of converting first."""
    rng = np.random.default_rng(len(layout) + threads)
    factors = (GEV, ARCMIN, 1.0)
    dtypes = [np.dtype(d) for d in dtypes]
    axes = _axes(np.float32)
    n = 4 * numba_fill.BLOCK + 11
    stored = [_stored(a.edges, f, d, rng, n) for a, f, d in zip(axes, factors, dtypes, strict=True)]
    converted = [_converted(v, f) for v, f in zip(stored, factors, strict=True)]
    expected = numba_fill.fill(*converted, axes, count_nonfinite=True)
    columns = _rows(stored, layout)
    assert not any(c.flags.c_contiguous for c in columns)
    with (
        mock.patch.object(numba_fill, "MIN_EVENTS_PER_THREAD", 1),
        mock.patch.object(numba_fill, "TASK", numba_fill.BLOCK + 5),
    ):
        got = numba_fill.fill(
            *columns, axes, threads=threads, count_nonfinite=True, factors=factors
        )
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1] > 0

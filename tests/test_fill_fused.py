"""Conversion inside the compiled fill: other units, big-endian and strided columns.

The counts must be exactly those of converting every column first, the way
the public path always has (``float64(v) * factor``, rounded once to the
column's float type), for values on and next to every edge after conversion.
"""

import warnings
from unittest import mock

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, Table
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bgcube import FOVCube
from bgcube.array import Binning
from bgcube.data.chunks import iter_event_chunks
from bgcube.errors import DroppedEventsWarning
from bgcube.event_columns import stored_event_columns

numba_fill = pytest.importorskip(
    "bgcube.array._numba_fill", reason="numba not installed: the compiled NumPy path is off"
)

E_EDGES = np.geomspace(0.1, 100, 21)
DET_EDGES = np.linspace(-3, 3, 61)
#: unit -> factor to the canonical unit, as bgcube computes it
FACTORS = {
    "GeV": u.GeV.to(u.TeV),
    "MeV": u.MeV.to(u.TeV),
    "TeV": 1.0,
    "arcmin": u.arcmin.to(u.deg),
    "rad": u.rad.to(u.deg),
    "deg": 1.0,
}


def _axes(dtype):
    """The cube's axes, with edges representable in ``dtype`` (values can sit on them)."""
    return tuple(
        Binning.from_edges(np.asarray(e, dtype).astype(np.float64))
        for e in (E_EDGES, DET_EDGES, DET_EDGES)
    )


def _convert_first(values, factor):
    """The public path's conversion: float64 product, rounded once to the column's type."""
    values = np.asarray(values)
    dtype = np.float32 if values.dtype.itemsize == 4 else np.float64
    with np.errstate(over="ignore", invalid="ignore"):
        return (values.astype(np.float64) * factor).astype(dtype)


def _near_edges(edges, factor, dtype, rng, n):
    """Stored values that land on and next to every edge once converted, plus random ones."""
    edges = np.asarray(edges, dtype)
    start = (edges.astype(np.float64) / factor).astype(dtype)
    steps = [start]
    for _ in range(3):
        steps.append(np.nextafter(steps[-1], np.inf, dtype=dtype))
        steps.insert(0, np.nextafter(steps[0], -np.inf, dtype=dtype))
    near = np.concatenate(steps)
    lo, hi = edges[0] / factor, edges[-1] / factor
    spread = rng.uniform(lo - 0.1 * abs(lo), hi + 0.1 * abs(hi), n).astype(dtype)
    out = np.concatenate([near, spread])
    rng.shuffle(out)
    return out


def _layout(values, layout):
    """``values`` in a native, big-endian or strided (table row) layout."""
    if layout == "native":
        return values
    big = values.dtype.newbyteorder(">")
    if layout == "big-endian":
        return values.astype(big)
    rows = np.zeros(len(values), dtype=[("a", "i1"), ("v", big), ("b", "f8")])
    rows["v"] = values
    return rows["v"]  # big-endian, strided, unaligned: as astropy reads FITS rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["native", "big-endian", "rows"])
@pytest.mark.parametrize("units", [("GeV", "deg", "deg"), ("MeV", "arcmin", "rad")])
def test_kernel_converts_exactly_like_converting_first(dtype, layout, units):
    """On and next to every edge after conversion, several threads and tasks: the counts
    of the columns converted first, and those values do sit on edges."""
    rng = np.random.default_rng(3)
    axes = _axes(dtype)
    factors = tuple(FACTORS[unit] for unit in units)
    n = 3 * numba_fill.BLOCK + 101
    stored = [
        _near_edges(axis.edges, f, dtype, rng, n)[:n] for axis, f in zip(axes, factors, strict=True)
    ]
    stored[2][::97] = np.nan
    stored[1][5] = np.inf
    converted = [_convert_first(v, f) for v, f in zip(stored, factors, strict=True)]
    on_edges = np.isin(converted[0].astype(np.float64), axes[0].edges)
    assert on_edges.sum() > 10  # the test reaches the edges
    weights = rng.integers(0, 4, n).astype(np.float64)
    expected, bad = numba_fill.fill(*converted, axes, weights, count_nonfinite=True)
    columns = [_layout(v, layout) for v in stored]
    assert all(c.dtype.isnative for c in columns) == (layout == "native")
    for threads in (1, 3):
        with (
            mock.patch.object(numba_fill, "MIN_EVENTS_PER_THREAD", 1),
            mock.patch.object(numba_fill, "TASK", numba_fill.BLOCK + 7),
        ):
            got, got_bad = numba_fill.fill(
                *columns, axes, weights, threads=threads, count_nonfinite=True, factors=factors
            )
        np.testing.assert_array_equal(got, expected)
        assert got_bad == bad > 0


def test_kernel_mixed_types_and_overflow():
    """float32 and float64 columns together, one of them read as it is; a float32 value
    that overflows once converted counts as dropped, as it does when converted first."""
    rng = np.random.default_rng(5)
    axes = _axes(np.float32)
    energy = _near_edges(axes[0].edges, 1e-3, np.float32, rng, 5000)
    n = len(energy)
    dety = rng.uniform(-4, 4, n)  # float64, deg: read as it is
    detx = rng.uniform(-4, 4, n).astype(np.float32) / np.float32(FACTORS["rad"])
    detx[7] = np.finfo(np.float32).max  # inf in deg as float32
    factors = (1e-3, 1.0, FACTORS["rad"])
    converted = [_convert_first(v, f) for v, f in zip((energy, dety, detx), factors, strict=True)]
    assert np.isinf(converted[2][7])
    expected, bad = numba_fill.fill(*converted, axes, count_nonfinite=True)
    got, got_bad = numba_fill.fill(
        energy, dety.astype(">f8"), detx, axes, count_nonfinite=True, factors=factors
    )
    np.testing.assert_array_equal(got, expected)
    assert got_bad == bad == 1


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)]),
    unit=st.sampled_from(["GeV", "MeV", "arcmin", "rad"]),
    big=st.booleans(),
)
def test_kernel_conversion_random_values(data, dtype, unit, big):
    """Any stored values (subnormals, huge, negative, non-finite included): the counts
    of converting first."""
    factor = FACTORS[unit]
    axes = _axes(dtype)
    values = data.draw(hnp.arrays(dtype, st.integers(1, 300), elements=hnp.from_dtype(dtype)))
    near = _near_edges(axes[0].edges, factor, dtype, np.random.default_rng(len(values)), 0)
    values = np.concatenate([values, near])
    other = np.full(len(values), 0.01, dtype)
    stored = values.astype(values.dtype.newbyteorder(">")) if big else values
    for position in range(3):  # the converted column as energy, DETY, DETX
        columns, factors = [other, other, other], [1.0, 1.0, 1.0]
        columns[position], factors[position] = stored, factor
        converted = [_convert_first(c, f) for c, f in zip(columns, factors, strict=True)]
        expected = numba_fill.fill(*converted, axes, count_nonfinite=True)
        got = numba_fill.fill(*columns, axes, count_nonfinite=True, factors=factors)
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1] == expected[1]


def _cube(dtype=np.float64):
    e, y, x = (np.asarray(b.edges) for b in _axes(dtype))
    return FOVCube(x * u.deg, y * u.deg, e * u.TeV, scheme="bg_counts_cube")


def _table_columns(dtype, n=200_000, seed=11):
    """ENERGY in GeV, DETY in arcmin, DETX in deg, with values on edges after conversion."""
    rng = np.random.default_rng(seed)
    axes = _axes(dtype)
    columns = {}
    for (name, unit), axis in zip(
        (("ENERGY", "GeV"), ("DETY", "arcmin"), ("DETX", "deg")), axes, strict=True
    ):
        columns[name] = _near_edges(axis.edges, FACTORS[unit], dtype, rng, n)[:n] * u.Unit(unit)
    return columns


def _portable(events, dtype):
    """The counts of the path that converts first (NumPy, slice by slice)."""
    return _cube(dtype).fill_events(events, method="bincount").data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["Table", "QTable", "dict"])
def test_public_fill_in_other_units(kind, dtype):
    """A Table, QTable or dict of Quantities in GeV/arcmin: filled through the kernel
    without a copy, the counts of converting first."""
    columns = _table_columns(dtype)
    events = {"Table": Table, "QTable": QTable, "dict": dict}[kind](columns)
    stored, factors = stored_event_columns(events)
    assert factors == (FACTORS["GeV"], FACTORS["arcmin"], 1.0)
    for out, name in zip(stored, ("ENERGY", "DETY", "DETX"), strict=True):
        assert np.shares_memory(out, np.asarray(events[name]))
    with mock.patch.object(numba_fill, "fill", wraps=numba_fill.fill) as fill:
        data = _cube(dtype).fill_events(events).data
    assert fill.call_args.kwargs["factors"] == factors
    np.testing.assert_array_equal(data, _portable(events, dtype))
    assert data.sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_fill_from_a_fits_file(tmp_path, dtype):
    """A table as astropy reads it from FITS (big-endian, strided rows), with weights and
    dropped events: the counts, weights and warning of converting first."""
    columns = _table_columns(dtype, n=300_000)
    columns["DETX"][::1000] = np.nan * u.deg
    Table(columns).write(tmp_path / "events.fits")
    table = Table.read(tmp_path / "events.fits")
    for name in ("ENERGY", "DETY", "DETX"):
        column = table[name]
        assert not column.dtype.isnative and not column.flags.c_contiguous
        assert np.shares_memory(stored_event_columns(table)[0][0], table["ENERGY"])
    weights = np.random.default_rng(2).uniform(0, 2, len(table))
    with (
        pytest.warns(DroppedEventsWarning) as fused,
        mock.patch.object(numba_fill, "fill", wraps=numba_fill.fill) as fill,
    ):
        data = _cube(dtype).fill_events(table, weights=[weights]).data
    assert fill.call_args.kwargs["factors"] == (FACTORS["GeV"], FACTORS["arcmin"], 1.0)
    with pytest.warns(DroppedEventsWarning) as first:
        expected = _cube(dtype).fill_events(table, [weights], method="bincount").data
    np.testing.assert_allclose(data, expected, rtol=1e-12)
    with pytest.warns(DroppedEventsWarning):
        unweighted = _cube(dtype).fill_events(table).data
    with pytest.warns(DroppedEventsWarning):
        np.testing.assert_array_equal(unweighted, _portable(table, dtype))
    assert fused[0].message.n_dropped == first[0].message.n_dropped == 300


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_reader_as_stored(tmp_path, dtype):
    """``iter_event_chunks(dtype=None)`` yields big-endian views in the file's units; the
    chunks filled through the kernel count what the converted chunks count."""
    columns = _table_columns(dtype, n=50_000)
    hdu = fits.BinTableHDU(Table(columns), name="EVENTS")
    hdu.writeto(tmp_path / "events.fits")
    path = tmp_path / "events.fits"
    fused, converted = _cube(dtype), _cube(dtype)
    with mock.patch.object(numba_fill, "fill", wraps=numba_fill.fill) as fill:
        for chunk in iter_event_chunks(path, chunk_size=7000, dtype=None):
            assert [c.unit for c in chunk] == [u.GeV, u.arcmin, u.deg]
            assert not any(c.dtype.isnative for c in chunk)
            assert chunk[0].dtype.itemsize == np.dtype(dtype).itemsize
            fused.fill_events(chunk)
    assert fill.call_count == 8  # every chunk through the kernel, converted there
    assert fill.call_args.kwargs["factors"] == (FACTORS["GeV"], FACTORS["arcmin"], 1.0)
    for chunk in iter_event_chunks(path, chunk_size=7000, dtype=dtype):
        converted.fill_events(chunk)
    np.testing.assert_array_equal(fused.data, converted.data)
    assert fused.data.sum() > 0


def test_integer_columns_keep_the_converting_path():
    """Integer columns are converted first (NumPy), not read by the kernel."""
    events = {
        "ENERGY": np.arange(1, 1001) * u.GeV,
        "DETY": np.zeros(1000, np.int32) * u.deg,
        "DETX": np.ones(1000, np.int16),
    }
    events["DETY"] = u.Quantity(np.zeros(1000, np.int32), u.deg, dtype=np.int32)
    assert stored_event_columns(events)[0] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = _cube().fill_events(events).data
    np.testing.assert_array_equal(data, _portable(events, np.float64))
    assert data.sum() == np.count_nonzero(np.arange(1, 1001) * 1e-3 >= 0.1)


def test_which_loop_converts():
    """The index loop converts contiguous columns itself, except a float64 product on a
    linear axis (it could be fused into the next subtraction); others go through buffers."""
    plans = [numba_fill.axis_plan(b) for b in _axes(np.float64)]
    double, single = [np.zeros(10)] * 3, [np.zeros(10, np.float32)] * 3
    assert numba_fill._in_loop(double, (1e-3, 1.0, 1.0), plans, True)  # GeV on the log axis
    assert not numba_fill._in_loop(double, (1.0, 1 / 60, 1.0), plans, True)
    assert numba_fill._in_loop(single, (1e-6, 1 / 60, 1.0), plans, True)
    assert not numba_fill._in_loop([_layout(np.zeros(10), "rows")] * 3, (1.0,) * 3, plans, True)
    assert not numba_fill._in_loop(double, (1e-3, 1.0, 1.0), plans, False)

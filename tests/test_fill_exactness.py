"""Every fill path agrees exactly with a searchsorted reference.

The fast paths find a bin by arithmetic (linear), by a lookup table on the
float bits (log), or by binary search, and must all put a value in the bin
whose half-open ``[lo, hi)`` holds it. The hard cases are drawn on purpose:
values exactly on edges, their float64 neighbours, float32 roundings of
edges and their float32 neighbours, NaN, +-inf, and the top edge (dropped).
"""

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgcube.array import Binning, fill_histogram, flat_bin_index
from bgcube.array._flat_index import axis_plan, estimate_flat_index
from bgcube.array.histogram import FILL_METHODS, default_fill_method
from bgcube.array.namespace import backend_name
from bgcube.backend import to_numpy


def methods_for(xp):
    """Every fill method that applies to the backend of ``xp``."""
    name = backend_name(xp)
    methods = {
        "numpy": ["bincount", "portable"],
        "cupy": ["bincount", "portable"],
        "jax": ["jax", "portable"],
    }.get(name, ["portable"])
    if name == "numpy" and default_fill_method(xp) == "numba":
        methods.append("numba")
    return ["auto", *methods]


def reference_counts(energy, dety, detx, binnings, weights=None):
    """Half-open [lo, hi) counts from NumPy's searchsorted on float64 values."""
    shape = tuple(b.nbin for b in binnings)
    indices = []
    inside = np.ones(len(energy), bool)
    for values, b in zip((energy, dety, detx), binnings, strict=True):
        v = np.asarray(values).astype(np.float64)
        inside &= (v >= b.lo) & (v < b.hi)
        indices.append(np.clip(np.searchsorted(b.edges, v, side="right") - 1, 0, b.nbin - 1))
    flat = np.ravel_multi_index(tuple(indices), shape)
    w = None if weights is None else np.asarray(weights, np.float64)[inside]
    return np.bincount(flat[inside], weights=w, minlength=math.prod(shape)).reshape(shape)


@st.composite
def binnings(draw):
    """A linear, log or irregular axis, as ``Binning.from_edges`` would classify it."""
    kind = draw(st.sampled_from(["linear", "log", "irregular", "irregular_positive"]))
    n = draw(st.integers(1, 70))
    if kind == "linear":
        lo = draw(st.floats(-1e3, 1e3, allow_subnormal=False))
        width = draw(st.floats(1e-3, 1e3))
        edges = np.linspace(lo, lo + width, n + 1)
    elif kind == "log":
        lo = draw(st.floats(1e-4, 1e3))
        ratio = draw(st.floats(1.0001, 1e4))
        edges = np.geomspace(lo, lo * ratio, n + 1)
    else:
        low = 1e-3 if kind == "irregular_positive" else -50.0
        points = draw(
            st.lists(
                st.floats(low, 50.0, allow_subnormal=False), min_size=2, max_size=n + 1, unique=True
            )
        )
        edges = np.sort(points)
    if np.any(np.diff(edges) <= 0):  # rounding merged two edges: use fewer
        edges = np.unique(edges)
    if len(edges) < 2:
        edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
    return Binning.from_edges(edges)


@st.composite
def hard_values(draw, binning, size):
    """Values on, next to and around the edges of ``binning``, plus NaN and inf."""
    edges = np.asarray(binning.edges)
    e32 = edges.astype(np.float32)
    special = np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            e32.astype(np.float64),
            np.nextafter(e32, np.float32(-np.inf)).astype(np.float64),
            np.nextafter(e32, np.float32(np.inf)).astype(np.float64),
            [np.nan, np.inf, -np.inf, 0.0, -0.0],
        ]
    )
    span = binning.hi - binning.lo
    pick = st.one_of(
        st.sampled_from(special),
        st.floats(binning.lo - 0.1 * span, binning.hi + 0.1 * span),
    )
    return np.array(draw(st.lists(pick, min_size=size, max_size=size)), dtype=np.float64)


#: Events per example: a fixed length (padded with NaN, which is dropped) so that
#: JAX compiles its kernels once per binning, not once per array length.
N_EVENTS = 256


@st.composite
def events(draw):
    axes = (draw(binnings()), draw(binnings()), draw(binnings()))
    n = draw(st.integers(0, N_EVENTS))
    pad = np.full(N_EVENTS - n, np.nan)
    values = tuple(np.concatenate([draw(hard_values(b, n)), pad]) for b in axes)
    return axes, values


def _flush_subnormals(values):
    """XLA on CPU reads subnormal numbers as 0 (the caveat in bgcube/array/binning.py)."""
    tiny = np.finfo(values.dtype).tiny
    return np.where(np.abs(values) < tiny, np.zeros_like(values), values)


def _check_all_methods(xp, axes, values, dtype, weights=None):
    host = [_flush_subnormals(v.astype(dtype)) for v in values]
    expected = reference_counts(*host, axes, weights)
    arrays = [xp.asarray(v) for v in host]
    w = None if weights is None else xp.asarray(weights)
    for method in methods_for(xp):
        counts = fill_histogram(*arrays, axes, w, method=method)
        assert counts.dtype == xp.float64
        assert tuple(counts.shape) == tuple(b.nbin for b in axes)
        np.testing.assert_array_equal(to_numpy(counts), expected, err_msg=f"method={method}")


@given(case=events(), dtype=st.sampled_from([np.float32, np.float64]))
def test_every_method_matches_searchsorted(xp, case, dtype):
    axes, values = case
    _check_all_methods(xp, axes, values, dtype)


@given(case=events(), data=st.data())
def test_weighted_fill_matches_searchsorted(xp, case, data):
    axes, values = case
    n = N_EVENTS
    # multiples of 1/4 below 2**20: sums are exact in any order
    quarters = data.draw(st.lists(st.integers(-4 * 2**20, 4 * 2**20), min_size=n, max_size=n))
    weights = np.array(quarters, dtype=np.float64) / 4
    _check_all_methods(xp, axes, values, np.float64, weights)


def test_hard_cases_by_hand(xp):
    """Edges, the top edge, float32 neighbours of an edge, NaN and inf, explicitly."""
    axes = (
        Binning.from_edges(np.geomspace(0.1, 100, 21)),
        Binning.from_edges(np.linspace(-4.0107, 4.0107, 61)),
        Binning.from_edges([-4.0, -1.0, 0.0, 0.3, 4.0]),
    )
    edge = axes[0].edges[7]
    f32 = np.float32(edge)
    energy = np.array(
        [
            0.1,
            100.0,
            edge,
            np.nextafter(edge, 0),
            float(f32),
            float(np.nextafter(f32, np.float32(0))),
            np.nan,
            np.inf,
            1.0,
            1.0,
        ]
    )
    dety = np.array([0.0] * 8 + [axes[1].edges[-1], -np.inf])
    detx = np.array([0.3] * 10)
    expected = reference_counts(energy, dety, detx, axes)
    # lo edge counts, top edge (100) and NaN/inf/top-of-DETY are dropped
    assert expected.sum() == 5
    for dtype in (np.float64, np.float32):
        _check_all_methods(xp, axes, (energy, dety, detx), dtype)


def test_auto_method_per_backend(xp):
    assert default_fill_method(xp) in FILL_METHODS
    if backend_name(xp) == "array_api_strict":
        assert default_fill_method(xp) == "portable"


def test_unknown_or_unfit_method_and_bad_shapes_raise(xp):
    b = Binning.from_edges([0.0, 1.0])
    a = xp.asarray([0.5])
    with pytest.raises(ValueError, match="unknown fill method"):
        fill_histogram(a, a, a, (b, b, b), method="nope")
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        fill_histogram(a, a, xp.asarray([0.5, 0.5]), (b, b, b))
    if backend_name(xp) != "numpy":
        with pytest.raises(ValueError, match="needs NumPy"):
            fill_histogram(a, a, a, (b, b, b), method="numba")


# --- the numba kernel's own structure: threads, blocks, lookup-table plans ---------


@pytest.fixture(scope="module")
def numba_fill():
    pytest.importorskip("numba", reason="numba not installed: the compiled NumPy path is off")
    from bgcube.array import _numba_fill

    return _numba_fill


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fused", [True, False])
def test_numba_threads_and_blocks_match_reference(numba_fill, dtype, fused):
    """Many blocks, ragged blocks and tasks, several threads, the three axes in one
    loop (``fused``) or one by one, events on edges: the exact counts."""
    rng = np.random.default_rng(7)
    n = 3 * numba_fill.BLOCK * 5 + 17
    detx_edges = np.linspace(-4.0, 4.0, 9) if fused else [-4.0, -1.0, 0.0, 0.3, 4.0]
    axes = (
        Binning.from_edges(np.geomspace(0.1, 100, 21)),
        Binning.from_edges(np.linspace(-4.0, 4.0, 61)),
        Binning.from_edges(detx_edges),
    )
    methods = [numba_fill.axis_plan(b)[0] for b in axes]
    assert (methods[2] == numba_fill.LINEAR) == fused
    energy = np.exp(rng.uniform(np.log(0.05), np.log(200), n)).astype(dtype)
    dety = rng.normal(0, 2.5, n).astype(dtype)
    # values on the edges in the first and last blocks (redone against the edges), none
    # in the others (the fast loops decide them)
    first, last = slice(0, numba_fill.BLOCK, 97), slice(-numba_fill.BLOCK, None, 89)
    energy[first] = np.asarray(axes[0].edges, dtype)[rng.integers(0, 21, len(energy[first]))]
    dety[last] = np.asarray(axes[1].edges, dtype)[rng.integers(0, 61, len(dety[last]))]
    detx = rng.uniform(-4.5, 4.5, n).astype(dtype)
    detx[::101] = np.nan
    detx[first] = rng.choice(np.array(detx_edges, dtype), len(detx[first]))
    weights = rng.integers(0, 5, n).astype(np.float64)
    expected = reference_counts(energy, dety, detx, axes, weights)
    for threads in (1, 2, 3):
        with (
            mock.patch.object(numba_fill, "MIN_EVENTS_PER_THREAD", 1),
            mock.patch.object(numba_fill, "TASK", 3 * numba_fill.BLOCK + 5),
        ):
            flat = numba_fill.fill(energy, dety, detx, axes, weights, threads=threads)
        np.testing.assert_array_equal(flat.reshape(expected.shape), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["LOG", "TABLE"])
def test_numba_positive_axis_special_values(numba_fill, dtype, method):
    """The log axis (log2 estimate) and the lookup table (range test on bit patterns):
    signs, zeros, infinities, NaN, subnormals and the values on and next to every edge
    are binned like searchsorted does."""
    edges = np.geomspace(0.1, 100, 21)
    if method == "TABLE":  # no longer a log axis
        edges[5] *= 1.01
    edges = edges.astype(dtype).astype(np.float64)
    axis = Binning.from_edges(edges)
    other = Binning.from_edges([0.0, 1.0])
    assert numba_fill.axis_plan(axis)[0] == getattr(numba_fill, method)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, -0.5, -edges[3], 1e6]
    special += [float(np.finfo(dtype).tiny) / 4, float(np.finfo(dtype).max)]
    near = [np.nextafter(edges.astype(dtype), d) for d in (-np.inf, np.inf)]
    energy = np.concatenate([np.array(special).astype(dtype), edges.astype(dtype), *near])
    half = np.full(len(energy), 0.5, dtype)
    expected = reference_counts(energy, half, half, (axis, other, other))
    flat, bad = numba_fill.fill(energy, half, half, (axis, other, other), count_nonfinite=True)
    np.testing.assert_array_equal(flat.reshape(expected.shape), expected)
    assert bad == 4  # +-inf and the two NaN


def test_numba_axis_plans(numba_fill):
    """Linear and log edges use arithmetic, other positive edges a lookup table, others a
    search."""
    plan = numba_fill.axis_plan
    assert plan(Binning.from_edges(np.linspace(-4, 4, 61)))[0] == numba_fill.LINEAR
    assert plan(Binning.from_edges(np.geomspace(0.1, 100, 21)))[0] == numba_fill.LOG
    assert plan(Binning.from_edges(np.geomspace(1e-310, 1e-300, 21)))[0] == numba_fill.TABLE
    assert plan(Binning.from_edges([0.5, 0.7, 3.0, 8.0]))[0] == numba_fill.TABLE
    assert plan(Binning.from_edges([-1.0, 0.7, 3.0, 8.0]))[0] == numba_fill.SEARCH
    # edges closer than any float slice the table can afford: binary search
    lo = 1.0
    tight = [lo, np.nextafter(lo, 2), np.nextafter(np.nextafter(lo, 2), 2), 1e300]
    assert plan(Binning.from_edges(tight))[0] == numba_fill.SEARCH


def test_numba_log2_estimate_is_within_its_bound(numba_fill):
    """The polynomial log2 of a log axis errs by less than the bound its margin assumes."""
    import numba

    from bgcube.array import _numba_kernel

    log2 = numba.njit(lambda v: np.array([_numba_kernel._log2(x) for x in v]))
    mantissas = np.linspace(1.0, 2.0, 1 << 20, endpoint=False)
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            mantissas,
            mantissas * 2.0**-1000,
            mantissas * 2.0**1000,
            10 ** rng.uniform(-300, 300, 10**5),
        ]
    )
    error = np.abs(log2(values) - np.log2(values))
    assert error.max() < _numba_kernel.LOG2_ERROR / 1.5


# --- the array paths' flat index ----------------------------------------------------


@given(case=events(), dtype=st.sampled_from([np.float32, np.float64]))
def test_flat_bin_index_matches_searchsorted(xp, case, dtype):
    axes, values = case
    host = [_flush_subnormals(v.astype(dtype)) for v in values]
    overflow = math.prod(b.nbin for b in axes)
    indices, inside = [], np.ones(N_EVENTS, bool)
    for v, b in zip(host, axes, strict=True):
        v = v.astype(np.float64)
        inside &= (v >= b.lo) & (v < b.hi)
        indices.append(np.clip(np.searchsorted(b.edges, v, side="right") - 1, 0, b.nbin - 1))
    expected = np.where(
        inside, np.ravel_multi_index(tuple(indices), [b.nbin for b in axes]), overflow
    )
    flat = flat_bin_index(*(xp.asarray(v) for v in host), axes)
    assert flat.dtype == xp.int64
    np.testing.assert_array_equal(to_numpy(flat), expected)


def _expected_flat(host, axes):
    """Flat index from NumPy's searchsorted; the overflow index outside the cube."""
    indices, inside = [], np.ones(len(host[0]), bool)
    for v, b in zip(host, axes, strict=True):
        v = v.astype(np.float64)
        inside &= (v >= b.lo) & (v < b.hi)
        indices.append(np.clip(np.searchsorted(b.edges, v, side="right") - 1, 0, b.nbin - 1))
    flat = np.ravel_multi_index(tuple(indices), [b.nbin for b in axes])
    return np.where(inside, flat, math.prod(b.nbin for b in axes))


@given(case=events(), dtype=st.sampled_from([np.float32, np.float64]))
def test_estimate_is_exact_or_undecided(xp, case, dtype):
    """The gather-free estimate is the exact index, or "undecided" inside the cube."""
    axes, values = case
    host = [_flush_subnormals(v.astype(dtype)) for v in values]
    expected = _expected_flat(host, axes)
    overflow = math.prod(b.nbin for b in axes)
    index = to_numpy(estimate_flat_index(*(xp.asarray(v) for v in host), axes, xp=xp))
    undecided = index == overflow + 1
    np.testing.assert_array_equal(index[~undecided], expected[~undecided])
    assert np.all(expected[undecided] < overflow)  # only events inside are undecided


def test_estimate_decides_ordinary_events_and_flags_edges(xp):
    """Events off the edges are all decided; events on an edge are undecided, then
    binned exactly by the fill's second pass."""
    rng = np.random.default_rng(5)
    axes = (
        Binning.from_edges(np.geomspace(0.1, 100, 21)),
        Binning.from_edges(np.linspace(-4.0, 4.0, 61)),
        Binning.from_edges(np.linspace(-4.0, 4.0, 61)),
    )
    n = 100_000
    host = [
        np.exp(rng.uniform(np.log(0.05), np.log(200), n)),
        rng.normal(0, 2, n),
        rng.normal(0, 2, n),
    ]
    overflow = math.prod(b.nbin for b in axes)
    index = to_numpy(estimate_flat_index(*(xp.asarray(v) for v in host), axes, xp=xp))
    np.testing.assert_array_equal(index, _expected_flat(host, axes))
    on_edges = [np.asarray(axes[0].edges[1:-1]), np.full(19, 0.05), np.full(19, 0.05)]
    index = to_numpy(estimate_flat_index(*(xp.asarray(v) for v in on_edges), axes, xp=xp))
    assert np.all(index == overflow + 1)  # every energy is on an edge
    counts = fill_histogram(*(xp.asarray(v) for v in on_edges), axes)
    np.testing.assert_array_equal(to_numpy(counts), reference_counts(*on_edges, axes))


def test_arithmetic_margin_falls_back_to_search():
    """Where rounding or uneven edges could move the estimate by 1/4 bin, edges are searched."""
    assert axis_plan(Binning.from_edges(np.linspace(-4, 4, 61))).method == "arithmetic"
    log_plan = axis_plan(Binning.from_edges(np.geomspace(0.1, 100, 21)))
    assert (log_plan.method, log_plan.single) == ("arithmetic", True)
    assert not axis_plan(Binning.from_edges(np.geomspace(1e-40, 1, 21))).single
    assert axis_plan(Binning.from_edges(1e15 + np.arange(5.0))).method == "arithmetic"
    uneven = Binning((0.0, 1.0, 1.5, 3.0), "linear")  # mislabelled: edges not uniform
    tiny_log = Binning(tuple(np.geomspace(1e100, 1e100 * (1 + 1e-10), 5)), "log")
    other = Binning.from_edges([0.0, 1.0])
    for axis, values in (
        (uneven, [0.0, 0.99, 1.0, 1.2, 1.5, 2.9, 3.0]),
        (tiny_log, list(tiny_log.edges) + [1e100 * (1 + 0.6e-10)]),
    ):
        assert axis_plan(axis).method == "search"
        values = np.array(values)
        half = np.full(len(values), 0.5)
        expected = reference_counts(values, half, half, (axis, other, other))
        for method in ("portable", "bincount"):
            counts = fill_histogram(values, half, half, (axis, other, other), method=method)
            np.testing.assert_array_equal(counts, expected)


def test_several_slices_and_a_ragged_end(xp):
    """Eager backends index events slice by slice: the slices join up exactly."""
    from bgcube.array._flat_index import SLICE

    rng = np.random.default_rng(11)
    n = 2 * SLICE + 5
    axes = (
        Binning.from_edges(np.geomspace(0.1, 100, 21)),
        Binning.from_edges(np.linspace(-4.0, 4.0, 61)),
        Binning.from_edges([-4.0, -1.0, 0.0, 0.3, 4.0]),
    )
    values = (
        np.exp(rng.uniform(np.log(0.05), np.log(200), n)),
        rng.normal(0, 2.5, n),
        rng.uniform(-5, 5, n),
    )
    expected = reference_counts(*values, axes)
    for method in methods_for(xp):
        counts = fill_histogram(*(xp.asarray(v) for v in values), axes, method=method)
        np.testing.assert_array_equal(to_numpy(counts), expected, err_msg=f"method={method}")


def test_thread_count_from_environment(monkeypatch):
    from bgcube.array.threads import n_threads

    monkeypatch.setenv("BGCUBE_NUM_THREADS", "3")
    assert n_threads() == 3
    monkeypatch.setenv("BGCUBE_NUM_THREADS", "0")
    assert n_threads() == 1
    monkeypatch.delenv("BGCUBE_NUM_THREADS")
    assert n_threads() >= 1


def test_numpy_falls_back_to_bincount_without_numba(monkeypatch):
    import array_api_compat.numpy as np_xp

    from bgcube.array import histogram

    monkeypatch.setattr(histogram, "_have_numba", lambda: False)
    assert default_fill_method(np_xp) == "bincount"
    monkeypatch.setattr(histogram, "_have_numba", lambda: True)
    assert default_fill_method(np_xp) == "numba"


def test_small_numpy_fills_skip_numba_until_it_is_loaded(monkeypatch):
    """A fill too small to repay numba's start-up uses bincount, unless numba is running."""
    import array_api_compat.numpy as np_xp

    from bgcube.array import histogram

    monkeypatch.setattr(histogram, "_have_numba", lambda: True)
    monkeypatch.setattr(histogram, "_small_fills", [0])
    small, large = histogram.NUMBA_MIN_EVENTS - 1, histogram.NUMBA_MIN_EVENTS
    monkeypatch.setattr(histogram, "_numba_loaded", lambda: False)
    assert default_fill_method(np_xp, small) == "bincount"
    assert default_fill_method(np_xp, large) == "numba"
    assert default_fill_method(np_xp) == "numba"
    monkeypatch.setattr(histogram, "_numba_loaded", lambda: True)
    assert default_fill_method(np_xp, small) == "numba"


def test_many_small_numpy_fills_load_numba_with_the_same_counts(monkeypatch):
    """After NUMBA_LOAD_AFTER events of small fills, the kernel takes over; counts stay exact."""

    from bgcube.array import histogram

    pytest.importorskip("numba")
    monkeypatch.setattr(histogram, "_small_fills", [0])
    monkeypatch.setattr(histogram, "_numba_loaded", lambda: False)
    monkeypatch.setattr(histogram, "NUMBA_LOAD_AFTER", 3000)
    rng = np.random.default_rng(4)
    axes = (
        Binning.from_edges(np.geomspace(0.1, 100, 11)),
        Binning.from_edges(np.linspace(-3, 3, 13)),
        Binning.from_edges(np.linspace(-3, 3, 13)),
    )
    methods, used = [], []
    original = histogram.default_fill_method

    def recording(xp, n_events=None):
        methods.append(original(xp, n_events))
        return methods[-1]

    monkeypatch.setattr(histogram, "default_fill_method", recording)
    for _ in range(4):
        events = (rng.uniform(0.1, 100, 1000), rng.normal(0, 1, 1000), rng.normal(0, 1, 1000))
        counts = histogram.fill_histogram(*events, axes)
        used.append(np.array_equal(counts, reference_counts(*events, axes)))
    assert methods == ["bincount", "bincount", "bincount", "numba"] and all(used)

"""Property tests of the array core on every backend."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bgcube import array as _array
from bgcube.array import Binning, fill_histogram
from bgcube.backend import to_numpy

BINNINGS = (
    Binning.from_edges(np.geomspace(0.1, 100, 21)),  # log
    Binning.from_edges(np.linspace(-4.0, 4.0, 13)),  # linear
    Binning.from_edges([-4.0, -2.5, -1.0, 0.0, 0.3, 2.0, 4.0]),  # irregular
)


def _reference_counts(energy, dety, detx, binnings, weights=None):
    """Half-open [lo, hi) reference built on NumPy's searchsorted."""
    shape = tuple(b.nbin for b in binnings)
    indices = []
    inside = np.ones(energy.shape, bool)
    for values, b in zip((energy, dety, detx), binnings, strict=True):
        v = np.asarray(values, np.float64)
        inside &= (v >= b.lo) & (v < b.hi)
        indices.append(np.clip(np.searchsorted(b.edges, v, side="right") - 1, 0, b.nbin - 1))
    flat = np.ravel_multi_index(tuple(indices), shape)
    w = None if weights is None else weights[inside]
    return np.bincount(flat[inside], weights=w, minlength=math.prod(shape)).reshape(shape)


# subnormal coordinates are excluded: XLA on CPU flushes them to zero, so JAX
# bins -1e-313 (or a float32 -4e-45) as 0.0; no physical coordinate is subnormal,
# and values that would be subnormal once cast to float32 are replaced by 0
finite = st.floats(-6, 6, allow_nan=False, allow_subnormal=False, width=64).map(
    lambda v: 0.0 if abs(v) < 1e-30 else v
)
# non-negative data values; tiny ones become 0, since their products turn
# subnormal and XLA flushes those to zero on CPU
values_strategy = st.floats(0, 1e3, allow_subnormal=False).map(lambda v: 0.0 if v < 1e-100 else v)

events_strategy = st.integers(0, 400).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.floats(0.01, 300)),
        hnp.arrays(np.float64, n, elements=finite),
        hnp.arrays(np.float64, n, elements=finite),
    )
)


def test_binning_kinds_detected():
    assert [b.kind for b in BINNINGS] == ["log", "linear", "irregular"]


@pytest.mark.parametrize(
    "edges, message",
    [([1.0], "at least 2"), ([0.0, 1.0, 1.0], "strictly increasing"), ([0.0, np.nan], "finite")],
)
def test_binning_rejects_bad_edges(edges, message):
    with pytest.raises(ValueError, match=message):
        Binning(tuple(edges))


@given(events=events_strategy, dtype=st.sampled_from([np.float32, np.float64]))
def test_counts_identical_on_every_backend(xp, events, dtype):
    energy, dety, detx = (a.astype(dtype) for a in events)
    expected = _reference_counts(energy, dety, detx, BINNINGS)
    counts = fill_histogram(xp.asarray(energy), xp.asarray(dety), xp.asarray(detx), BINNINGS)
    assert _array.array_namespace(counts) is _array.array_namespace(xp.asarray(energy))
    assert counts.dtype == xp.float64
    np.testing.assert_array_equal(to_numpy(counts), expected)
    # total counts equal the number of events inside the cube
    inside = np.ones(len(energy), bool)
    for v, b in zip((energy, dety, detx), BINNINGS, strict=True):
        inside &= (v.astype(np.float64) >= b.lo) & (v.astype(np.float64) < b.hi)
    assert float(to_numpy(xp.sum(counts))) == inside.sum()


@given(events=events_strategy)
def test_portable_path_matches_fast_path(xp, events):
    arrays = [xp.asarray(a) for a in events]
    fast = fill_histogram(*arrays, BINNINGS)
    portable = fill_histogram(*arrays, BINNINGS, method="portable")
    np.testing.assert_array_equal(to_numpy(fast), to_numpy(portable))


@given(events=events_strategy, data=st.data())
def test_weighted_fill(xp, events, data):
    n = len(events[0])
    weights = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0, 10, allow_subnormal=False)))
    expected = _reference_counts(*events, BINNINGS, weights=weights)
    counts = fill_histogram(*(xp.asarray(a) for a in events), BINNINGS, xp.asarray(weights))
    # the portable path sums weights as differences of a float64 cumulative sum
    np.testing.assert_allclose(to_numpy(counts), expected, rtol=0, atol=1e-12 * (1 + weights.sum()))


def test_nan_inf_and_edges_are_dropped_not_folded(xp):
    b = (
        Binning.from_edges([1.0, 10.0]),
        Binning.from_edges([0.0, 1.0]),
        Binning.from_edges([0.0, 1.0]),
    )
    energy = np.array([1.0, 10.0, np.nan, np.inf, -np.inf, 0.5, 9.999, 5.0])
    y = np.array([0.5] * 7 + [1.0])
    x = np.full(8, 0.5)
    counts = fill_histogram(xp.asarray(energy), xp.asarray(y), xp.asarray(x), b)
    # only energy=1.0 (lower edge) and 9.999 count; 10.0 is the excluded upper edge,
    # and the last event sits on DETY's upper edge
    assert float(to_numpy(counts)[0, 0, 0]) == 2.0


def test_float32_counts_beyond_2_24_stay_exact(xp):
    # 2**24 + 3 events in one bin: a float32 accumulator would stop at 2**24
    n = 2**24 + 3
    b = (
        Binning.from_edges([1.0, 2.0]),
        Binning.from_edges([0.0, 1.0]),
        Binning.from_edges([0.0, 1.0]),
    )
    e = xp.full((n,), 1.5, dtype=xp.float32)
    c = xp.full((n,), 0.5, dtype=xp.float32)
    counts = fill_histogram(e, c, c, b)
    assert float(to_numpy(counts)[0, 0, 0]) == n


@given(
    counts=hnp.arrays(np.float64, (3, 4, 5), elements=st.floats(0, 1e6, allow_subnormal=False)),
    time=st.one_of(st.just(0.0), st.floats(1e-3, 1e8)),  # s; 1e-308 s would overflow the rate
)
def test_rate_times_exposure_gives_counts(xp_nocupy, counts, time):
    xp = xp_nocupy
    edges = [
        xp.asarray(b.edges, dtype=xp.float64)
        for b in (
            Binning.from_edges(np.geomspace(0.1, 100, 4)),
            Binning.from_edges(np.linspace(-2, 2, 5)),
            Binning.from_edges(np.linspace(-2.5, 2.5, 6)),
        )
    ]
    volume = _array.bin_volume(*edges)
    rate = _array.compute_rate(xp.asarray(counts), xp.asarray(time, dtype=xp.float64), volume)
    r = to_numpy(rate)
    assert np.all(np.isfinite(r))
    if time == 0:
        assert np.all(r == 0)
    else:
        np.testing.assert_allclose(r * time * to_numpy(volume), counts, rtol=1e-12)
        # rates agree with the NumPy computation to 1e-12
        np.testing.assert_allclose(r, counts / (time * to_numpy(volume)), rtol=1e-12)


def test_exact_solid_angle_sums_to_sphere_band(xp_nocupy):
    xp = xp_nocupy
    ey = xp.asarray(np.linspace(-90, 90, 7))
    ex = xp.asarray(np.linspace(-180, 180, 9))
    total = float(to_numpy(xp.sum(_array.solid_angle(ey, ex, exact=True))))
    assert total == pytest.approx(4 * math.pi, rel=1e-12)
    small = to_numpy(_array.solid_angle(xp.asarray([0.0, 0.1]), xp.asarray([0.0, 0.1])))
    flat = to_numpy(_array.solid_angle(xp.asarray([0.0, 0.1]), xp.asarray([0.0, 0.1]), exact=False))
    np.testing.assert_allclose(small, flat, rtol=1e-12)


def _scipy_ndimage():
    # the reference only: scipy is in the test extra, not in the GPU check's wheel folder
    return pytest.importorskip("scipy.ndimage", reason="scipy is not installed")


@given(
    images=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
        elements=values_strategy,
    )
)
def test_k5a_convolution_matches_scipy_reflect(xp, images):
    ndimage = _scipy_ndimage()
    kernel = np.array(_array.K5A, float) / 25.0
    expected = np.stack([ndimage.convolve(im, kernel) for im in images])
    result = to_numpy(_array.convolve_k5a(xp.asarray(images)))
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12 * images.max(initial=0))


@given(
    images=hnp.arrays(np.float64, (4, 7, 6), elements=values_strategy), n_passes=st.integers(1, 5)
)
def test_smoothing_preserves_each_image_integral(xp, images, n_passes):
    area = np.linspace(1.0, 2.0, 42).reshape(7, 6)
    smoothed = to_numpy(_array.smooth_images(xp.asarray(images), n_passes, xp.asarray(area)))
    before = (images * area).sum(axis=(1, 2))
    after = (smoothed * area).sum(axis=(1, 2))
    np.testing.assert_allclose(after, before, rtol=1e-12)


def test_smoothing_matches_original_algorithm(xp):
    ndimage = _scipy_ndimage()
    rng = np.random.default_rng(3)
    images = rng.poisson(5.0, (3, 10, 12)).astype(float)
    kernel = np.array(_array.K5A, float)
    reference = images.copy()
    for i in range(3):
        for _ in range(4):
            reference[i] = ndimage.convolve(reference[i], kernel)
        reference[i] *= images[i].sum() / reference[i].sum()
    result = to_numpy(_array.smooth_images(xp.asarray(images), 4))
    np.testing.assert_allclose(result, reference, rtol=1e-12)


@pytest.mark.parametrize("total, passes", [(2e6, 3), (1e6, 3), (999_999, 4), (1e5, 4), (10, 5)])
def test_number_of_smoothing_passes(total, passes):
    assert _array.n_smooth_passes(total) == passes

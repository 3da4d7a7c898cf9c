"""NumPy as its own Array API namespace gives the core's results of array_api_compat's wrapper.

From NumPy 2.1 the core runs on ``numpy`` itself (importing
``array_api_compat.numpy`` clones all of NumPy, ``numpy.f2py`` and
``numpy.testing`` included). These tests run each function of the core on
the same data with both namespaces and ask for identical bits.
"""

import numpy as np
import pytest

from bgcube.array import (
    Binning,
    array_namespace,
    backend_name,
    bin_index,
    compute_rate,
    fill_histogram,
    fill_histogram_chunks,
    flat_bin_index,
    get_namespace,
    integrate_energy_log_log,
    interpolate_cube,
    smooth_images,
    solid_angle,
)
from bgcube.array import fov as _fov
from bgcube.array import namespace as _namespace

pytestmark = pytest.mark.skipif(
    not _namespace._numpy_is_namespace(), reason="NumPy before 2.1 always uses array_api_compat"
)

BINNINGS = (
    Binning.from_edges(np.geomspace(0.1, 100, 21)),  # log
    Binning.from_edges(np.linspace(-4.0, 4.0, 13)),  # linear
    Binning.from_edges([-4.0, -2.5, -1.0, 0.0, 0.3, 2.0, 4.0]),  # irregular
)


def _events(n=20_000, dtype=np.float64, seed=3):
    rng = np.random.default_rng(seed)
    energy = (0.05 * (1 - rng.random(n)) ** (-1 / 1.5)).astype(dtype)
    dety = rng.normal(0, 2.5, n).astype(dtype)
    detx = rng.normal(0, 2.5, n).astype(dtype)
    detx[::97] = np.nan
    dety[::89] = 4.0  # on the upper edge: outside
    weights = rng.random(n)
    return energy, dety, detx, weights


def _both(monkeypatch, function):
    """``function()`` with NumPy as its own namespace, then with array_api_compat's wrapper."""
    own = function()
    with monkeypatch.context() as m:
        m.setattr(_namespace, "_numpy_is_namespace", lambda: False)
        import array_api_compat.numpy as compat

        assert array_namespace(np.zeros(1)) is compat
        wrapped = function()
    return own, wrapped


def _assert_same_bits(own, wrapped):
    own, wrapped = np.asarray(own), np.asarray(wrapped)
    assert own.dtype == wrapped.dtype and own.shape == wrapped.shape
    assert own.tobytes() == wrapped.tobytes()


def test_numpy_is_its_own_namespace():
    assert get_namespace("numpy") is np
    assert array_namespace(np.zeros(2), None, 1.5, np.float64(2.0)) is np
    assert backend_name(np) == "numpy"


def test_numpy_namespace_is_not_claimed_for_other_arrays():
    strict = pytest.importorskip("array_api_strict")
    assert array_namespace(strict.asarray([1.0])) is strict
    with pytest.raises(TypeError):
        array_namespace(np.zeros(1), strict.asarray([1.0]))
    with pytest.raises(TypeError):  # no array at all: array_api_compat's error, as before
        array_namespace(1.0)


@pytest.mark.parametrize("method", ["bincount", "portable"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_fill_identical(monkeypatch, method, dtype, weighted):
    energy, dety, detx, weights = _events(dtype=dtype)
    w = weights if weighted else None
    own, wrapped = _both(
        monkeypatch,
        lambda: fill_histogram(
            energy, dety, detx, BINNINGS, w, method=method, count_nonfinite=True
        ),
    )
    _assert_same_bits(own[0], wrapped[0])
    assert int(own[1]) == int(wrapped[1])
    chunks = [(energy[:7000], dety[:7000], detx[:7000]), (energy[7000:], dety[7000:], detx[7000:])]
    _assert_same_bits(
        *_both(monkeypatch, lambda: fill_histogram_chunks(chunks, BINNINGS, method=method))
    )


def test_bin_indices_identical(monkeypatch):
    energy, dety, detx, _ = _events()
    for values, binning in zip((energy, dety, detx), BINNINGS, strict=True):
        _assert_same_bits(*_both(monkeypatch, lambda v=values, b=binning: bin_index(v, b)))
    _assert_same_bits(*_both(monkeypatch, lambda: flat_bin_index(energy, dety, detx, BINNINGS)))


def test_interpolation_identical(monkeypatch):
    rng = np.random.default_rng(5)
    data = rng.random(tuple(b.nbin for b in BINNINGS)) * 10
    data[3, 2, 1] = 0.0
    energy, dety, detx, _ = _events(n=500)
    energy = np.abs(energy) + 0.01
    for extrapolate in (False, True):
        _assert_same_bits(
            *_both(
                monkeypatch,
                lambda e=extrapolate: interpolate_cube(
                    data, BINNINGS, energy, dety, detx, extrapolate=e
                ),
            )
        )
        _assert_same_bits(
            *_both(
                monkeypatch,
                lambda e=extrapolate: integrate_energy_log_log(
                    data, BINNINGS, energy, energy * 3.0, dety, detx, extrapolate=e
                ),
            )
        )


def test_rate_smoothing_and_solid_angle_identical(monkeypatch):
    rng = np.random.default_rng(7)
    counts = rng.poisson(3.0, (4, 9, 11)).astype(np.float64)
    dety_edges, detx_edges = np.linspace(-3, 3, 10), np.linspace(-4, 4, 12)
    for exact in (False, True):
        _assert_same_bits(
            *_both(monkeypatch, lambda e=exact: solid_angle(dety_edges, detx_edges, exact=e))
        )
    area = solid_angle(dety_edges, detx_edges, exact=True)
    _assert_same_bits(*_both(monkeypatch, lambda: smooth_images(counts, 3, area)))
    time = rng.random((1, 9, 11)) * 100
    time[0, 0, 0] = 0.0
    volume = np.ones((4, 1, 1))
    _assert_same_bits(*_both(monkeypatch, lambda: compute_rate(counts, time, volume)))


def test_field_of_view_identical(monkeypatch):
    rng = np.random.default_rng(11)
    ra, dec = rng.uniform(80, 90, 3000), rng.uniform(-25, -15, 3000)
    for own, wrapped in zip(
        *_both(monkeypatch, lambda: _fov.sky_to_fov(ra, dec, 84.0, -20.0)), strict=True
    ):
        _assert_same_bits(own, wrapped)
    detx, dety = _fov.sky_to_fov(ra, dec, 84.0, -20.0)
    for own, wrapped in zip(
        *_both(monkeypatch, lambda: _fov.rotate_fov(detx, dety, 0.3)), strict=True
    ):
        _assert_same_bits(own, wrapped)
    circles = _fov.circle_unit_vectors([84.0, 86.0], [-20.0, -18.0], [0.5, 1.0])
    _assert_same_bits(*_both(monkeypatch, lambda: _fov.inside_circles(ra, dec, circles)))

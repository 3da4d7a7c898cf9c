"""Evaluation and energy integration of cubes.

Three kinds of checks:

* every backend against a NumPy/SciPy reference written here from the rule
  (``scipy.interpolate.RegularGridInterpolator`` on log values);
* exact properties (bin centres, power laws, zeros, edges, broadcasting, jit);
* Gammapy 2.x ``Background3D.evaluate`` / ``integrate_log_log`` on the real
  H.E.S.S. and CTA files (skipped where gammapy cannot be imported).

Tolerances. Float64 data: 1e-12 relative between backends. Float32 data
(the H.E.S.S. and CTA files): the log of the values is taken in float32, as
Gammapy does; NumPy and array_api_strict use the same ``numpy.log`` as
Gammapy and agree to ~1e-13, JAX's float32 log may differ by one unit in the
last place, i.e. up to ``2**-23 * |log v|`` <= 1.1e-5 relative for
``|log v| <= 88`` (the float32 floor is ``log(1.18e-38) = -87.3``). Where the
reference is at the float32 floor (<= 2.4e-38) bgcube returns exactly 0
(see `bgcube.array.interpolate`), hence ``atol=3e-38`` there.
"""

import math

import astropy.units as u
import numpy as np
import pytest
import scipy.interpolate
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bgcube import FOVCube
from bgcube.array import Binning, integrate_energy_log_log, interpolate_cube
from bgcube.array.namespace import array_namespace, backend_name
from bgcube.backend import to_numpy

FLOAT32_FLOOR_ATOL = 3e-38
#: One float32 ulp of |log v| <= 88, relative (JAX's float32 log vs NumPy's).
FLOAT32_LOG_RTOL = 88 * 2.0**-23


# ----------------------------------------------------------------------
# the NumPy/SciPy reference, written from the rule
def reference_evaluate(data, edges, energy, dety, detx, extrapolate=False):
    """Trilinear in (log E, y, x) on log(max(v, floor)); 0 outside unless extrapolating."""
    e_edges, y_edges, x_edges = (np.asarray(e, float) for e in edges)
    floor = np.finfo(data.dtype).smallest_normal
    log_data = np.log(np.maximum(data, floor)).astype(np.float64)
    nodes = (
        np.log(np.sqrt(e_edges[:-1] * e_edges[1:])),
        0.5 * (y_edges[:-1] + y_edges[1:]),
        0.5 * (x_edges[:-1] + x_edges[1:]),
    )
    keep = [len(n) > 1 for n in nodes]  # single-bin axes are constant
    e, y, x = np.broadcast_arrays(np.log(energy), dety, detx)
    if any(keep):
        interp = scipy.interpolate.RegularGridInterpolator(
            [n for n, k in zip(nodes, keep, strict=True) if k],
            log_data.reshape([len(n) for n, k in zip(nodes, keep, strict=True) if k]),
            bounds_error=False,
            fill_value=None,
        )
        points = np.stack([c.ravel() for c, k in zip((e, y, x), keep, strict=True) if k], -1)
        log_values = interp(points).reshape(e.shape)
    else:
        log_values = np.full(e.shape, log_data.item())
    with np.errstate(over="ignore"):  # log-extrapolation next to zeros can overflow: inf
        values = np.exp(log_values)
    values[values <= 2 * floor] = 0
    if not extrapolate:
        inside = np.ones(e.shape, bool)
        for c, ed in zip(
            np.broadcast_arrays(energy, dety, detx), (e_edges, y_edges, x_edges), strict=True
        ):
            inside &= (c >= ed[0]) & (c <= ed[-1])
        values[~inside | ~np.isfinite(values)] = 0
    return values


def binnings_of(edges):
    return tuple(Binning.from_edges(np.asarray(e, float)) for e in edges)


def random_cube(rng, shape=(6, 5, 7), dtype=np.float64, zero_fraction=0.2):
    e_edges = np.geomspace(0.1, 100, shape[0] + 1)
    y_edges = np.sort(rng.uniform(-3, 3, shape[1] + 1))
    x_edges = np.linspace(-2.5, 2.5, shape[2] + 1)
    data = rng.lognormal(-8, 2, shape).astype(dtype)
    data[rng.uniform(size=shape) < zero_fraction] = 0
    return data, (e_edges, y_edges, x_edges)


def random_points(rng, edges, n, margin=0.0):
    e_edges, y_edges, x_edges = edges
    lo, hi = math.log(e_edges[0]), math.log(e_edges[-1])
    energy = np.exp(rng.uniform(lo - margin, hi + margin, n))
    dety = rng.uniform(y_edges[0] - margin, y_edges[-1] + margin, n)
    detx = rng.uniform(x_edges[0] - margin, x_edges[-1] + margin, n)
    return energy, dety, detx


def on_backend(xp, *arrays):
    return [xp.asarray(a) for a in arrays]


def evaluate_on(xp, data, binnings, *coords, **kwargs):
    """interpolate_cube with the data and coordinates moved to ``xp``."""
    return interpolate_cube(xp.asarray(data), binnings, *on_backend(xp, *coords), **kwargs)


def integrate_on(xp, data, binnings, *coords, **kwargs):
    """integrate_energy_log_log with the data and coordinates moved to ``xp``."""
    return integrate_energy_log_log(xp.asarray(data), binnings, *on_backend(xp, *coords), **kwargs)


# ----------------------------------------------------------------------
# every backend against the reference
@pytest.mark.parametrize("extrapolate", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_agree_with_reference(xp, dtype, extrapolate):
    rng = np.random.default_rng(3)
    data, edges = random_cube(rng, dtype=dtype)
    points = random_points(rng, edges, 5000, margin=0.3)
    expected = reference_evaluate(data, edges, *points, extrapolate=extrapolate)
    result = evaluate_on(xp, data, binnings_of(edges), *points, extrapolate=extrapolate)
    assert array_namespace(result) is array_namespace(xp.asarray(data))
    assert result.dtype == xp.float64
    assert result.shape == (5000,)
    rtol = 1e-12 if dtype == np.float64 or backend_name(xp) != "jax" else FLOAT32_LOG_RTOL
    atol = 0 if dtype == np.float64 else FLOAT32_FLOOR_ATOL
    finite = np.isfinite(expected)
    np.testing.assert_allclose(to_numpy(result)[finite], expected[finite], rtol=rtol, atol=atol)
    assert np.array_equal(np.isfinite(to_numpy(result)), finite)


@given(
    data=hnp.arrays(
        np.float64,
        st.tuples(*[st.integers(1, 5)] * 3),
        elements=st.one_of(st.just(0.0), st.floats(1e-6, 1e3)),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_cubes_match_reference(xp, data, seed):
    rng = np.random.default_rng(seed)
    shape = data.shape
    edges = (
        np.cumprod(rng.uniform(1.2, 5.0, shape[0] + 1)) * 0.05,
        np.cumsum(rng.uniform(0.1, 1.0, shape[1] + 1)) - 2.0,
        np.cumsum(rng.uniform(0.1, 1.0, shape[2] + 1)) - 2.0,
    )
    points = random_points(rng, edges, 200, margin=0.2)
    expected = reference_evaluate(data, edges, *points)
    result = evaluate_on(xp, data, binnings_of(edges), *points)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------
# exact properties
def test_bin_centres_give_the_data(xp):
    rng = np.random.default_rng(0)
    data, edges = random_cube(rng, zero_fraction=0.0)
    e_edges, y_edges, x_edges = edges
    energy = np.sqrt(e_edges[:-1] * e_edges[1:])[:, None, None]
    dety = (0.5 * (y_edges[:-1] + y_edges[1:]))[None, :, None]
    detx = (0.5 * (x_edges[:-1] + x_edges[1:]))[None, None, :]
    result = interpolate_cube(
        xp.asarray(data), binnings_of(edges), *on_backend(xp, energy, dety, detx)
    )
    assert result.shape == data.shape
    np.testing.assert_allclose(to_numpy(result), data, rtol=1e-12)


def test_power_law_and_exponential_are_reproduced(xp):
    """Log values linear in (log E, y, x) are interpolated exactly, also beyond the centres."""
    e_edges = np.geomspace(0.5, 50, 9)
    y_edges = np.linspace(-2, 2, 5)
    x_edges = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 3.0])
    e_c = np.sqrt(e_edges[:-1] * e_edges[1:])
    y_c = 0.5 * (y_edges[:-1] + y_edges[1:])
    x_c = 0.5 * (x_edges[:-1] + x_edges[1:])

    def truth(e, y, x):
        return 3e-4 * e**-2.7 * np.exp(0.3 * y - 0.2 * x)

    data = truth(e_c[:, None, None], y_c[None, :, None], x_c[None, None, :])
    rng = np.random.default_rng(1)
    points = random_points(rng, (e_edges, y_edges, x_edges), 2000)
    result = interpolate_cube(
        xp.asarray(data), binnings_of((e_edges, y_edges, x_edges)), *on_backend(xp, *points)
    )
    np.testing.assert_allclose(to_numpy(result), truth(*points), rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_stays_zero(xp, dtype):
    rng = np.random.default_rng(2)
    data, edges = random_cube(rng, shape=(6, 8, 8), dtype=dtype, zero_fraction=0.0)
    data[:, :4, :] = 0  # DETY below the 4th edge: no background at all
    data[3] = 0  # one empty energy bin
    binnings = binnings_of(edges)
    e_edges, y_edges, x_edges = edges
    y_centres = 0.5 * (y_edges[:-1] + y_edges[1:])
    # inside the zero region (up to the 4th centre), and at the empty energy bin's centre
    energy, _, detx = random_points(rng, edges, 1000)
    dety = rng.uniform(y_edges[0], y_centres[3], 1000)
    result = evaluate_on(xp, data, binnings, energy, dety, detx)
    assert np.all(to_numpy(result) == 0)
    e3 = np.full(1000, np.sqrt(e_edges[3] * e_edges[4]))
    dety = rng.uniform(y_centres[4], y_edges[-1], 1000)
    result = evaluate_on(xp, data, binnings, e3, dety, detx)
    assert np.all(to_numpy(result) == 0)
    # next to the zero region the value is positive and falls steeply towards it
    e = np.full(3, np.sqrt(e_edges[1] * e_edges[2]))
    y = np.array([y_centres[4], 0.5 * (y_centres[3] + y_centres[4]), y_centres[3]])
    x = np.zeros(3)
    values = to_numpy(evaluate_on(xp, data, binnings, e, y, x))
    assert values[0] > values[1] > values[2] == 0


def test_outside_is_zero_and_edges_are_closed(xp):
    data = np.full((2, 3, 4), 5.0)
    edges = (np.array([1.0, 2.0, 4.0]), np.array([-1.5, -0.5, 0.5, 1.5]), np.linspace(-2, 2, 5))
    b = binnings_of(edges)
    energy = np.array([1.0, 4.0, 0.999, 4.001, 2.0, 2.0, 2.0, 2.0, np.nan])
    dety = np.array([0.0, 1.5, 0.0, 0.0, -1.5, 1.5001, 0.0, 0.0, 0.0])
    detx = np.array([0.0, 2.0, 0.0, 0.0, -2.0, 0.0, 2.0001, -2.0001, 0.0])
    expected = np.array([5, 5, 0, 0, 5, 0, 0, 0, 0.0])
    result = evaluate_on(xp, data, b, energy, dety, detx)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12)
    extrapolated = to_numpy(evaluate_on(xp, data, b, energy, dety, detx, extrapolate=True))
    np.testing.assert_allclose(extrapolated[:8], 5.0, rtol=1e-12)
    assert np.isnan(extrapolated[8])


def test_extrapolation_continues_the_power_law(xp):
    e_edges = np.geomspace(1, 100, 5)
    e_c = np.sqrt(e_edges[:-1] * e_edges[1:])
    data = np.broadcast_to((2.0 * e_c**-3)[:, None, None], (4, 2, 2)).copy()
    edges = (e_edges, np.array([-1.0, 0.0, 1.0]), np.array([-1.0, 0.0, 1.0]))
    energy = np.array([0.3, 0.9, 150.0, 1000.0])
    args = (data, binnings_of(edges), energy, np.zeros(4), np.zeros(4))
    assert np.all(to_numpy(evaluate_on(xp, *args)) == 0)
    result = evaluate_on(xp, *args, extrapolate=True)
    np.testing.assert_allclose(to_numpy(result), 2.0 * energy**-3, rtol=1e-11)


def test_single_bin_axes_are_constant(xp):
    data = np.array([[[1.0, 4.0]]])  # one energy bin, one DETY bin, two DETX bins
    edges = (np.array([1.0, 10.0]), np.array([-1.0, 1.0]), np.array([-1.0, 0.0, 1.0]))
    energy = np.array([1.0, 3.0, 10.0, 3.0])
    dety = np.array([-1.0, 0.3, 1.0, 0.0])
    detx = np.array([-0.5, -0.5, 0.5, 0.0])
    result = evaluate_on(xp, data, binnings_of(edges), energy, dety, detx)
    np.testing.assert_allclose(to_numpy(result), [1.0, 1.0, 4.0, 2.0], rtol=1e-12)


def test_broadcasting_shapes(xp):
    rng = np.random.default_rng(4)
    data, edges = random_cube(rng, zero_fraction=0.0)
    energy = np.geomspace(0.2, 50, 3)[:, None, None]
    dety = np.linspace(-2, 2, 4)[None, :, None]
    detx = np.linspace(-2, 2, 5)[None, None, :]
    result = evaluate_on(xp, data, binnings_of(edges), energy, dety, detx)
    assert result.shape == (3, 4, 5)
    expected = reference_evaluate(data, edges, energy, dety, detx)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12)
    scalar = evaluate_on(
        xp, data, binnings_of(edges), np.float64(1.0), np.float64(0.1), np.float64(-0.3)
    )
    assert scalar.shape == ()


def test_inputs_are_not_modified():
    rng = np.random.default_rng(5)
    data, edges = random_cube(rng)
    points = random_points(rng, edges, 100, margin=0.5)
    frozen = [a.copy() for a in (data, *points)]
    for a in frozen:
        a.setflags(write=False)
    interpolate_cube(frozen[0], binnings_of(edges), *frozen[1:])
    integrate_energy_log_log(frozen[0], binnings_of(edges), frozen[1], 2 * frozen[1], *frozen[2:])
    for a, b in zip(frozen, (data, *points), strict=True):
        np.testing.assert_array_equal(a, b)


def test_jit_matches_eager():
    jax = pytest.importorskip("jax")
    from bgcube.array.namespace import get_namespace

    jnp = get_namespace("jax")
    rng = np.random.default_rng(6)
    data, edges = random_cube(rng)
    binnings = binnings_of(edges)
    points = random_points(rng, edges, 500, margin=0.2)
    args = [jnp.asarray(a) for a in (data, *points)]
    evaluate = jax.jit(lambda d, e, y, x: interpolate_cube(d, binnings, e, y, x))
    np.testing.assert_allclose(
        np.asarray(evaluate(*args)),
        np.asarray(interpolate_cube(args[0], binnings, *args[1:])),
        rtol=1e-12,
    )
    integrate = jax.jit(lambda d, a, b, y, x: integrate_energy_log_log(d, binnings, a, b, y, x))
    lo, y, x = args[1:]
    np.testing.assert_allclose(
        np.asarray(integrate(args[0], lo, 3 * lo, y, x)),
        np.asarray(integrate_energy_log_log(args[0], binnings, lo, 3 * lo, y, x)),
        rtol=1e-12,
    )


def test_bad_shapes_are_rejected(xp):
    edges = (np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="does not match the binnings"):
        interpolate_cube(
            xp.asarray(np.ones((2, 1, 1))), binnings_of(edges), *on_backend(xp, *np.ones((3, 2)))
        )
    with pytest.raises(ValueError, match="must be 3-D"):
        interpolate_cube(
            xp.asarray(np.ones((1, 1))), binnings_of(edges), *on_backend(xp, *np.ones((3, 2)))
        )


# ----------------------------------------------------------------------
# energy integral
def quadrature(data, edges, energy_min, energy_max, dety, detx, n=20001):
    """Trapezoid rule of the reference interpolant in log E, on a dense grid."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    log_e = np.log(energy_min) + t * (np.log(energy_max) - np.log(energy_min))
    energy = np.clip(np.exp(log_e), energy_min, energy_max)  # exp(log(x)) may exceed x
    values = reference_evaluate(data, edges, energy, dety[None, :], detx[None, :])
    return np.trapezoid(values * energy, log_e, axis=0)


def test_integral_matches_quadrature_of_the_interpolant(xp):
    rng = np.random.default_rng(7)
    data, edges = random_cube(rng, zero_fraction=0.0)
    energy, dety, detx = random_points(rng, edges, 40)
    e_max = np.minimum(energy * np.exp(rng.uniform(0, 4, 40)), edges[0][-1])
    expected = quadrature(data, edges, energy, e_max, dety, detx)
    result = integrate_on(xp, data, binnings_of(edges), energy, e_max, dety, detx)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integral_next_to_a_zero_node(xp, dtype):
    """Between a rate and a zero node the interpolant is a steep power law down to the
    dtype's floor; the integral is that power law's (Gammapy drops the piece for float64)."""
    e_edges = np.geomspace(1, 100, 5)
    e_c = np.sqrt(e_edges[:-1] * e_edges[1:])
    data = np.zeros((4, 1, 1), dtype)
    data[:2, 0, 0] = [2e-3, 5e-4]
    edges = (e_edges, np.array([-1.0, 1.0]), np.array([-1.0, 1.0]))
    lo, hi = np.array([e_c[1]]), np.array([e_c[2]])
    zero = np.zeros(1)
    expected = quadrature(data, edges, lo, hi, zero, zero, n=400001)
    result = to_numpy(integrate_on(xp, data, binnings_of(edges), lo, hi, zero, zero))
    rtol = 1e-6 if dtype == np.float64 or backend_name(xp) != "jax" else FLOAT32_LOG_RTOL
    np.testing.assert_allclose(result, expected, rtol=rtol)
    # compared with the piece's scale e*f(e) at the nonzero end, it is small but not zero
    assert 0 < result[0] < 0.02 * e_c[1] * 5e-4
    # beyond the zero node everything is zero
    beyond = integrate_on(xp, data, binnings_of(edges), hi, 2 * hi, zero, zero)
    assert to_numpy(beyond)[0] == 0


def test_integral_of_a_power_law_is_exact(xp):
    e_edges = np.geomspace(0.1, 100, 13)
    e_c = np.sqrt(e_edges[:-1] * e_edges[1:])
    edges = (e_edges, np.array([-1.0, 1.0]), np.array([-1.0, 1.0]))
    lo, hi = np.array([0.2, 0.5, 3.0, 7.0]), np.array([0.3, 60.0, 3.0, 2.0])
    zeros = np.zeros(4)
    for index in (2.7, 1.0, 1.0 + 1e-9, 0.0):
        data = (4.0 * e_c**-index)[:, None, None]
        result = to_numpy(integrate_on(xp, data, binnings_of(edges), lo, hi, zeros, zeros))
        slope = 1.0 - index  # integral of 4 E**-index: 4 lo**s (exp(s log(hi/lo)) - 1) / s
        log_ratio = np.log(hi / lo)
        if slope == 0:
            expected = 4.0 * log_ratio
        else:
            expected = 4.0 * lo**slope * np.expm1(slope * log_ratio) / slope
        np.testing.assert_allclose(result, expected, rtol=1e-9, err_msg=f"index {index}")
        assert result[2] == 0 and result[3] < 0  # empty band, reversed band


def test_integral_band_is_cut_to_the_energy_axis(xp):
    e_edges = np.geomspace(1, 10, 4)
    data = np.ones((3, 1, 1))
    edges = (e_edges, np.array([-1.0, 1.0]), np.array([-1.0, 1.0]))
    lo = np.array([0.1, 0.5, 20.0, 1.0, 1.0])
    hi = np.array([100.0, 5.0, 30.0, 10.0, 10.0])
    detx = np.array([0.0, 0.0, 0.0, 0.0, 1.5])
    args = (data, binnings_of(edges), lo, hi, np.zeros(5), detx)
    result = to_numpy(integrate_on(xp, *args))
    np.testing.assert_allclose(result, [9.0, 4.0, 0.0, 9.0, 0.0], rtol=1e-12)
    extrapolated = to_numpy(integrate_on(xp, *args, extrapolate=True))
    np.testing.assert_allclose(extrapolated, [99.9, 4.5, 10.0, 9.0, 9.0], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integral_of_zero_region_is_zero(xp, dtype):
    rng = np.random.default_rng(8)
    data, edges = random_cube(rng, dtype=dtype, zero_fraction=0.0)
    data[:] = 0
    energy, dety, detx = random_points(rng, edges, 100)
    result = integrate_on(xp, data, binnings_of(edges), energy, 5 * energy, dety, detx)
    assert np.all(to_numpy(result) == 0)


def test_integral_backends_agree(xp):
    rng = np.random.default_rng(9)
    data, edges = random_cube(rng)
    energy, dety, detx = random_points(rng, edges, 2000, margin=0.2)
    e_max = energy * np.exp(rng.uniform(-1, 3, 2000))
    expected = integrate_energy_log_log(data, binnings_of(edges), energy, e_max, dety, detx)
    result = integrate_on(xp, data, binnings_of(edges), energy, e_max, dety, detx)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12)


# ----------------------------------------------------------------------
# the FOVCube shell
def test_cube_evaluate_units_and_backend(xp):
    rng = np.random.default_rng(10)
    data, (e_edges, y_edges, x_edges) = random_cube(rng, zero_fraction=0.0)
    cube = FOVCube(
        x_edges * u.deg,
        y_edges * u.deg,
        e_edges * u.TeV,
        data=data * u.Unit("1 / (MeV s sr)"),
        scheme="bg_cube",
    ).to_backend(xp)
    energy = np.geomspace(200, 20000, 7) * u.GeV
    dety = np.linspace(-60, 60, 7) * u.arcmin
    detx = 0.2 * u.deg
    values = cube.evaluate(detx=detx, dety=dety, energy=energy)
    assert values.unit == cube.unit and values.shape == (7,)
    expected = reference_evaluate(
        data, (e_edges, y_edges, x_edges), energy.to_value(u.TeV), dety.to_value(u.deg), 0.2
    )
    np.testing.assert_allclose(values.value, expected, rtol=1e-12)

    integral = cube.evaluate_integral(
        detx=detx, dety=dety, energy_min=1 * u.TeV, energy_max=[2, 3, 4, 5, 6, 7, 8] * u.TeV
    )
    assert integral.unit == u.Unit("1 / (s sr)")
    core = integrate_energy_log_log(
        data,
        binnings_of((e_edges, y_edges, x_edges)),
        np.asarray(1.0),
        np.arange(2.0, 9.0),
        dety.to_value(u.deg),
        np.asarray(0.2),
    )
    np.testing.assert_allclose(integral.value, to_numpy(core) * 1e6, rtol=1e-12)
    with pytest.raises(ValueError, match="detx must be a Quantity convertible to deg"):
        cube.evaluate(detx=1 * u.TeV, dety=0 * u.deg, energy=1 * u.TeV)
    with pytest.raises(ValueError, match="energy must be"):
        cube.evaluate(detx=0 * u.deg, dety=0 * u.deg, energy=1.0)


@pytest.mark.parametrize("extrapolate", [False, True])
def test_cube_integral_in_chunks_is_bit_identical(xp, monkeypatch, extrapolate):
    import bgcube.cube_evaluation

    rng = np.random.default_rng(11)
    data, (e_edges, y_edges, x_edges) = random_cube(rng)
    cube = FOVCube(
        x_edges * u.deg,
        y_edges * u.deg,
        e_edges * u.TeV,
        data=data * u.Unit("1 / (MeV s sr)"),
        scheme="bg_cube",
    ).to_backend(xp)
    energy, dety, detx = random_points(rng, (e_edges, y_edges, x_edges), 12, margin=0.2)
    e_lo = np.concatenate([energy[:-2], [np.nan, 0.5]])[:, None, None] * u.TeV
    e_hi = (e_lo * np.exp(rng.uniform(-1, 3, (12, 1, 1)))).to(u.GeV)
    y = np.concatenate([dety[:-1], [np.nan]])[None, :, None] * u.deg
    x = detx[None, None, :7] * u.deg

    def integral():
        return cube.evaluate_integral(
            detx=x, dety=y, energy_min=e_lo, energy_max=e_hi, extrapolate=extrapolate
        )

    whole = integral()
    assert whole.shape == (12, 12, 7)
    # a chunk of 3 positions: 12 * 12 * 7 / 3 calls of the core, the last one short
    monkeypatch.setattr(
        bgcube.cube_evaluation, "INTEGRAL_CHUNK", 3 * (cube.energy_axis.nbin + 1) + 1
    )
    chunked = integral()
    assert chunked.unit == whole.unit and chunked.shape == whole.shape
    if backend_name(xp) in ("numpy", "array_api_strict"):
        assert np.array_equal(chunked.value, whole.value, equal_nan=True)
    else:  # XLA, CUDA: vectorised differently with the array size, to the last bits
        np.testing.assert_allclose(chunked.value, whole.value, rtol=1e-14, atol=0)


def test_cube_integral_unit_without_per_energy():
    cube = FOVCube(
        np.linspace(-1, 1, 3) * u.deg,
        np.linspace(-1, 1, 3) * u.deg,
        np.geomspace(1, 10, 3) * u.TeV,
        data=np.ones((2, 2, 2)) * u.s,
    )
    integral = cube.evaluate_integral(
        detx=0 * u.deg, dety=0 * u.deg, energy_min=1 * u.TeV, energy_max=10 * u.TeV
    )
    assert integral.unit == u.s * u.TeV
    assert integral.value == pytest.approx(9.0, rel=1e-12)


# ----------------------------------------------------------------------
# Gammapy on the real files
REAL_FILES = [
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_020136.fits.gz", "BKG"),
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_033787.fits.gz", "BKG"),
    ("cta-1dc/irf_file_South_z20_50h.fits", "BACKGROUND"),
]


def _read_both(shared_data, relative, hdu, **gammapy_kwargs):
    gammapy_irf = pytest.importorskip("gammapy.irf")
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"reference file {path} is missing")
    cube = FOVCube.read(path, hdu=hdu)
    bkg = gammapy_irf.Background3D.read(path, hdu=hdu)
    if gammapy_kwargs:
        bkg = gammapy_irf.Background3D(
            axes=bkg.axes, data=bkg.data, unit=bkg.unit, **gammapy_kwargs
        )
    return cube, bkg


#: astropy warns when Gammapy reads the CTA unit string (Gammapy then assumes 1/(MeV s sr)).
CTA_UNIT_WARNING = "ignore:'1/s/MeV/sr' did not parse as fits unit"


def _random_points_in(cube, rng, n, margin=0.0):
    edges = (cube.energy_edges.to_value(u.TeV), cube.coordy_edges.deg, cube.coordx_edges.deg)
    return random_points(rng, edges, n, margin)


def _rtol(backend):
    return FLOAT32_LOG_RTOL if backend == "jax" else 1e-6


@pytest.mark.gammapy
@pytest.mark.filterwarnings(CTA_UNIT_WARNING)
@pytest.mark.parametrize("relative, hdu", REAL_FILES)
def test_evaluate_agrees_with_gammapy(shared_data, xp_nocupy, relative, hdu):
    cube, bkg = _read_both(shared_data, relative, hdu)
    assert cube.data.dtype == np.float32  # as stored; the float32 floor applies
    rng = np.random.default_rng(11)
    energy, dety, detx = _random_points_in(cube, rng, 20000)
    # a few points on the edges, outside and NaN. Gammapy's energy edges can differ from
    # the file's by one ulp (its log axis recomputes them), so energies near the edges are
    # taken 1e-9 inside
    e_lo, e_hi = cube.energy_edges[[0, -1]].to_value(u.TeV) * [1 + 1e-9, 1 - 1e-9]
    x_lo, x_hi = cube.coordx_edges[[0, -1]].deg
    energy = np.concatenate(
        [energy, [e_lo, e_hi, 1.0, 1.0, 0.99 * e_lo, 1.01 * e_hi, 1.0, 1.0, np.nan]]
    )
    dety = np.concatenate([dety, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    detx = np.concatenate([detx, [0.0, 0.0, x_lo, x_hi, 0.0, 0.0, x_lo - 0.1, x_hi + 0.1, 0.0]])
    expected = bkg.evaluate(energy=energy * u.TeV, fov_lon=detx * u.deg, fov_lat=dety * u.deg)
    values = cube.to_backend(xp_nocupy).evaluate(
        detx=detx * u.deg, dety=dety * u.deg, energy=energy * u.TeV
    )
    assert values.unit == expected.unit
    np.testing.assert_allclose(
        values.value, expected.value, rtol=_rtol(backend_name(xp_nocupy)), atol=FLOAT32_FLOOR_ATOL
    )
    assert np.all(values.value[-5:] == 0) and np.all(expected.value[-5:] == 0)
    assert np.count_nonzero(values.value > 1e-30) > 10000  # the comparison is not vacuous


@pytest.mark.gammapy
@pytest.mark.filterwarnings(CTA_UNIT_WARNING)
@pytest.mark.parametrize("relative, hdu", REAL_FILES[1:])
def test_extrapolation_agrees_with_gammapy(shared_data, relative, hdu):
    interp = dict(values_scale="log", fill_value=None, bounds_error=False)
    cube, bkg = _read_both(shared_data, relative, hdu, interp_kwargs=interp)
    rng = np.random.default_rng(12)
    energy, dety, detx = _random_points_in(cube, rng, 5000, margin=0.3)
    expected = bkg.evaluate(energy=energy * u.TeV, fov_lon=detx * u.deg, fov_lat=dety * u.deg)
    values = cube.evaluate(
        detx=detx * u.deg, dety=dety * u.deg, energy=energy * u.TeV, extrapolate=True
    )
    np.testing.assert_allclose(values.value, expected.value, rtol=1e-6, atol=FLOAT32_FLOOR_ATOL)


@pytest.mark.gammapy
@pytest.mark.filterwarnings(CTA_UNIT_WARNING)
@pytest.mark.parametrize("relative, hdu", REAL_FILES)
def test_integral_agrees_with_gammapy(shared_data, relative, hdu):
    """Gammapy's integrate_log_log over the band limits and the energy nodes between them."""
    cube, bkg = _read_both(shared_data, relative, hdu)
    rng = np.random.default_rng(13)
    _, dety, detx = _random_points_in(cube, rng, 3000)
    # the interpolant's kinks: Gammapy's float64 nodes (cube.energy_bin_centers are
    # float32 for these files, and Gammapy takes the log of float32 energies in float32)
    centres = bkg.axes["energy"].center.to_value(u.TeV)
    # 1e-9 inside the axis: Gammapy's energy edges can differ from the file's by one ulp
    e_lo, e_hi = cube.energy_edges[[0, -1]].to_value(u.TeV) * [1 + 1e-9, 1 - 1e-9]
    bands = [(e_lo, e_hi), (0.3, 0.35), (1.0, 10.0), (0.8, 100.0), (centres[3], centres[5])]
    for lo, hi in bands:
        hi = min(hi, e_hi)
        nodes = np.concatenate([[lo], centres[(centres > lo) & (centres < hi)], [hi]])
        pieces = bkg.integrate_log_log(
            axis_name="energy",
            energy=nodes[:, None] * u.TeV,
            fov_lon=detx * u.deg,
            fov_lat=dety * u.deg,
        )
        expected = pieces.sum(axis=0).to(u.Unit("1 / (s sr)"))
        result = cube.evaluate_integral(
            detx=detx * u.deg, dety=dety * u.deg, energy_min=lo * u.TeV, energy_max=hi * u.TeV
        )
        # atol: Gammapy integrates float32 floor values (~1e-38), bgcube returns 0 there
        np.testing.assert_allclose(
            result.to_value(expected.unit),
            expected.value,
            rtol=1e-6,
            atol=1e-28,
            err_msg=f"band {lo}-{hi} TeV",
        )
        assert np.count_nonzero(result.value > 1e-20) > 100

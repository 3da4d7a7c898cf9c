"""The Cash statistic, its derivatives (against finite differences) and FitData."""

import astropy.units as u
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="bgcube.fit needs JAX")

import jax.numpy as jnp  # noqa: E402
from scipy.stats import poisson  # noqa: E402

from bgcube.fit import (  # noqa: E402
    BinGeometry,
    FitData,
    FlexibleModel,
    GaussianModel,
    cash,
    cash_terms,
    deviance_residuals,
    expected_counts,
    model_statistic,
)


def test_cash_is_a_log_likelihood_ratio():
    """C(mu) - C(mu') = -2 [ln P(n | mu) - ln P(n | mu')] and C(n) = 0."""
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.01, 30, 200)
    other = rng.uniform(0.01, 30, 200)
    n = rng.poisson(mu).astype(float)
    c = float(cash(jnp.asarray(mu), jnp.asarray(n)))
    c_other = float(cash(jnp.asarray(other), jnp.asarray(n)))
    expected = -2 * (poisson.logpmf(n, mu).sum() - poisson.logpmf(n, other).sum())
    np.testing.assert_allclose(c - c_other, expected, rtol=1e-10)
    perfect = jnp.where(n > 0, n, 1e-300)
    assert abs(float(cash(perfect, jnp.asarray(n)))) < 1e-10
    assert c > 0


def test_cash_handles_zeros_and_masks():
    mu = jnp.asarray([0.0, 0.0, 2.0, 1.0])
    n = jnp.asarray([0.0, 3.0, 0.0, jnp.nan])
    terms = np.asarray(cash_terms(mu, n))
    assert terms[0] == 0 and terms[1] == np.inf and terms[2] == 4.0
    mask = jnp.asarray([True, False, True, False])
    assert float(cash(mu, n, mask)) == 4.0
    # derivatives stay finite where n = 0, also at mu = 0
    grad = np.asarray(jax.grad(lambda m: cash(m, n, mask))(mu))
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[[0, 2]], [2.0, 2.0])
    assert np.all(grad[[1, 3]] == 0)


def test_deviance_residuals():
    mu = np.array([100.0, 100.0, 1e6, 2.0])
    n = np.array([120.0, 80.0, 1e6 + 3e3, 0.0])
    r = deviance_residuals(mu, n)
    assert r[0] > 0 > r[1] and r[3] < 0
    np.testing.assert_allclose(r[2], 3.0, rtol=1e-3)  # (n - mu) / sqrt(mu) for large counts
    np.testing.assert_allclose(r[3], -2.0)  # sqrt(2 mu) for n = 0


GEOM = BinGeometry.from_edges(
    np.geomspace(0.3, 30, 6), np.linspace(-3, 3, 9), np.linspace(-3, 3, 10)
)


def _data(model, values, seed=0, time=500.0):
    mu = np.asarray(expected_counts(model, jnp.asarray(values), GEOM, time))
    counts = np.random.default_rng(seed).poisson(mu).astype(float)
    return FitData.from_arrays(counts, np.full(mu.shape, time), GEOM)


GAUSS = GaussianModel()
GAUSS_VALUES = np.array([3e3, 3.4, 1.6, 0.1])
FLEX = FlexibleModel.from_energy_range(0.4, 25.0, 3)
FLEX_VALUES = np.array([9.0, 5.0, -3.0, 1.7, 0.1, 2.6, 0.1, 0.15, -0.1, 0.05, -0.04])


@pytest.mark.parametrize(
    "model, values", [(GAUSS, GAUSS_VALUES), (FLEX, FLEX_VALUES)], ids=["gaussian", "flexible"]
)
def test_gradient_and_hessian_agree_with_finite_differences(model, values):
    data = _data(model, values)
    point = jnp.asarray(values * 1.02)  # away from the minimum, so the gradient is not small
    stat = jax.jit(lambda v: model_statistic(model, v, data))
    grad = np.asarray(jax.jit(jax.grad(stat))(point))
    hess = np.asarray(jax.jit(jax.hessian(stat))(point))
    np.testing.assert_allclose(hess, hess.T, rtol=1e-10, atol=1e-10 * np.abs(hess).max())
    grad_fn = jax.jit(jax.grad(stat))
    for i in range(point.shape[0]):
        h = 1e-5 * max(1.0, abs(float(point[i])))
        up, down = point.at[i].add(h), point.at[i].add(-h)
        fd = (float(stat(up)) - float(stat(down))) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-5, atol=1e-6 * np.abs(grad).max())
        fd_row = (np.asarray(grad_fn(up)) - np.asarray(grad_fn(down))) / (2 * h)
        np.testing.assert_allclose(hess[i], fd_row, rtol=1e-5, atol=1e-6 * np.abs(hess).max())


def test_fitdata_masks_bins_without_time_and_checks_values():
    counts = np.ones(GEOM.shape)
    time = np.full(GEOM.shape, 10.0)
    time[0, 0, 0] = 0.0
    counts[0, 0, 0] = np.nan  # no time: ignored
    data = FitData.from_arrays(counts, time, GEOM)
    assert data.n_bins == counts.size - 1
    assert not bool(data.mask[0, 0, 0]) and float(data.counts[0, 0, 0]) == 0.0
    user_mask = np.ones(GEOM.shape, bool)
    user_mask[1] = False
    assert FitData.from_arrays(counts, time, GEOM, user_mask).n_bins == counts.size - 1 - 72
    bad = counts.copy()
    bad[2, 3, 4] = -1
    with pytest.raises(ValueError, match=r"counts must be finite and >= 0.*\(2, 3, 4\)"):
        FitData.from_arrays(bad, time, GEOM)
    with pytest.raises(ValueError, match="does not match the geometry"):
        FitData.from_arrays(np.ones((2, 2, 2)), 1.0, GEOM)


def test_fitdata_from_a_background_model_on_any_backend(xp):
    from bgcube.backend import from_numpy
    from bgcube.simulate import make_test_bg_cube_model

    model = make_test_bg_cube_model(ndetx_bins=6, ndety_bins=5, nenergy_bins=4)
    model.livetime_cube.data = model.livetime_cube.data * 3.0
    model.livetime_cube.unit = u.h
    model = model.to_backend(xp)
    data = FitData.from_model(model)
    np.testing.assert_allclose(np.asarray(data.time), 3 * 3600.0)
    np.testing.assert_allclose(
        np.asarray(data.counts), np.asarray(from_numpy(model.counts_cube.quantity.value))
    )
    model.counts_cube = None
    with pytest.raises(ValueError, match="counts_cube"):
        FitData.from_model(model)

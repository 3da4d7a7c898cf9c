"""The fitter on simulated cubes: recovery, pulls over 100 simulations, covariance, failures.

Each model's fit is compiled once for this module: once as a single fit
(`bgcube.fit.fit`) and once vmapped over the simulations.

The pull criterion (mean 0 +- 0.3, width 1 +- 0.3) is asked of 100
simulations rather than 50: with 50 the standard error of a mean pull is
0.14, so +-0.3 is only 2.1 standard errors and a model with 12 parameters
would fail it for about one set of seeds in three by chance alone; with 100
it is 3 standard errors (a 3% chance for 12 parameters).
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="bgcube.fit needs JAX")

import jax.numpy as jnp  # noqa: E402

from bgcube.fit import (  # noqa: E402
    STATUS_MESSAGES,
    BinGeometry,
    FitData,
    FitError,
    FlexibleModel,
    GaussianModel,
    build_fitter,
    expected_counts,
    fit,
    make_fitter,
    model_statistic,
    start_values,
)

GEOM = BinGeometry.from_edges(
    np.geomspace(0.3, 30, 9), np.linspace(-3, 3, 17), np.linspace(-3, 3, 17)
)
TIME = 1000.0
N_SIM = 100

CASES = {
    "gaussian": (GaussianModel(), np.array([3e4, 3.5, 1.5, 0.1])),
    "flexible": (
        FlexibleModel.from_energy_range(0.4, 25.0, 4),
        np.array([13.5, 8.0, 3.5, -0.6, 1.6, 0.1, 2.5, 0.15, 0.2, -0.1, 0.05, -0.03]),
    ),
}


def simulate(model, truth, seed):
    mu = np.asarray(expected_counts(model, jnp.asarray(truth), GEOM, TIME))
    counts = np.random.default_rng(seed).poisson(mu).astype(float)
    return FitData.from_arrays(counts, np.full(mu.shape, TIME), GEOM)


@pytest.fixture(scope="module", params=sorted(CASES))
def batch(request):
    """The simulations of one model, fitted in one vmapped, jitted call."""
    model, truth = CASES[request.param]
    datas = [simulate(model, truth, seed) for seed in range(N_SIM)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *datas)
    starts = jnp.stack([jnp.asarray(start_values(model, d)) for d in datas])
    out = jax.jit(jax.vmap(make_fitter(model)))(starts, stacked)
    return request.param, model, truth, out


def test_all_simulations_converge(batch):
    name, model, truth, out = batch
    status = np.asarray(out.status)
    assert np.all(status == 0), {STATUS_MESSAGES[s]: int(np.sum(status == s)) for s in set(status)}
    assert np.all(np.asarray(out.decrement) < 1e-8)


def test_pulls_are_standard_normal(batch):
    """Over 100 simulations each parameter's pull has mean 0 +- 0.3 and width 1 +- 0.3."""
    name, model, truth, out = batch
    errors = np.sqrt(np.diagonal(np.asarray(out.covariance), axis1=1, axis2=2))
    pulls = (np.asarray(out.values) - truth) / errors
    mean, width = pulls.mean(axis=0), pulls.std(axis=0, ddof=1)
    report = dict(zip(model.names, zip(mean.round(2), width.round(2), strict=True), strict=True))
    assert np.all(np.abs(mean) < 0.3), report
    assert np.all(np.abs(width - 1) < 0.3), report


@pytest.mark.parametrize("name", sorted(CASES))
def test_recovery_within_two_sigma_on_several_seeds(name):
    """Single fits (the public `fit`) on 5 new seeds recover the truth.

    "Within 2 sigma" is a probability, so the test asks for what it implies:
    at least 85% of all (seed, parameter) pulls within 2 (95% expected), none
    beyond 5, and the likelihood ratio of truth to best fit,
    ``C(truth) - C(best)``, never negative (the best fit is the minimum) and
    on average close to its chi-square expectation, the number of parameters.
    """
    model, truth = CASES[name]
    pulls, delta = [], []
    for seed in range(1000, 1005):
        data = simulate(model, truth, seed)
        result = fit(model, data)
        assert result.success, result.message
        assert result.n_free == len(truth) and result.dof == data.n_bins - len(truth)
        pulls.append((result.values - truth) / result.errors)
        delta.append(float(model_statistic(model, jnp.asarray(truth), data)) - result.statistic)
    pulls, delta = np.abs(np.array(pulls)), np.array(delta)
    assert np.mean(pulls < 2) >= 0.85, pulls.round(2)
    assert np.all(pulls < 5), pulls.round(2)
    assert np.all(delta > -1e-6), delta
    assert 0.3 < delta.mean() / len(truth) < 2.0, delta


def test_covariance_is_twice_the_inverse_hessian_in_physical_parameters():
    model, truth = CASES["gaussian"]
    data = simulate(model, truth, 7)
    result = fit(model, data)
    hess = jax.hessian(lambda v: model_statistic(model, v, data))(jnp.asarray(result.values))
    np.testing.assert_allclose(result.covariance, 2 * np.linalg.inv(np.asarray(hess)), rtol=1e-6)
    corr = result.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0)
    assert np.all(np.abs(corr) <= 1 + 1e-12)
    text = str(result)
    assert "converged" in text and "amplitude" in text and "+-" in text


def test_start_values_by_name_and_frozen_parameters():
    model, truth = CASES["gaussian"]
    data = simulate(model, truth, 8)
    result = fit(model, data, init={"width_index": 0.3}, frozen=["width_index"])
    assert result.success
    assert result.parameters["width_index"] == 0.3 and result.errors[3] == 0
    assert np.all(result.covariance[3] == 0) and result.n_free == 3
    assert "(frozen)" in str(result)
    # a wrong width index is absorbed by a worse fit, never silently by the frozen parameter
    free = fit(model, data)
    assert result.statistic > free.statistic + 25
    with pytest.raises(ValueError, match="unknown parameter"):
        fit(model, data, frozen=["nope"])
    with pytest.raises(ValueError, match="outside its bounds"):
        fit(model, data, init={"width": -1.0})


def test_flag_when_the_iterations_run_out():
    model, truth = CASES["gaussian"]
    data = simulate(model, truth, 9)
    result = fit(model, data, init=[1e3, 2.0, 3.0, 0.0], max_iter=2)
    assert not result.success and result.status == 1 and result.n_iter == 2
    assert "maximum number of iterations" in result.message
    with pytest.raises(FitError, match="maximum number of iterations"):
        result.raise_for_status()


def test_flag_when_the_statistic_is_not_finite_at_the_start():
    """A width of 0.001 deg predicts no counts away from the centre, where there are counts."""
    model, truth = CASES["gaussian"]
    result = fit(model, simulate(model, truth, 10), init={"width": 1e-3})
    assert result.status == 2 and not result.success
    assert "not finite" in result.message


def test_flag_when_parameters_are_degenerate():
    """One energy bin cannot tell the amplitude from the index: Hessian not positive definite."""
    model = GaussianModel()
    geom = BinGeometry.from_edges([2.0, 3.0], np.linspace(-3, 3, 13), np.linspace(-3, 3, 13))
    mu = np.asarray(expected_counts(model, jnp.asarray([3e4, 3.5, 1.5, 0.1]), geom, TIME))
    counts = np.random.default_rng(11).poisson(mu).astype(float)
    result = fit(model, FitData.from_arrays(counts, np.full(mu.shape, TIME), geom))
    assert result.status == 3, result.message
    assert "not positive definite" in result.message
    with pytest.raises(FitError):
        result.raise_for_status()


def test_build_fitter_on_a_custom_statistic_and_everything_frozen():
    from bgcube.fit import Parameter

    params = (Parameter("a", 1.0), Parameter("b", 2.0, min=0.0))

    def statistic(values, data):
        return (values[0] - data[0]) ** 2 + (jnp.log(values[1]) - data[1]) ** 2 * 4.0

    fitter = jax.jit(build_fitter(statistic, params))
    out = fitter(jnp.asarray([0.0, 0.0]), jnp.asarray([3.0, 0.5]))
    assert int(out.status) == 0
    np.testing.assert_allclose(np.asarray(out.values), [3.0, np.exp(0.5)], rtol=1e-6)
    # Delta statistic = 1 at one sigma: var(a) = 2 / 2, var(ln b) = 2 / 8
    np.testing.assert_allclose(float(out.covariance[0, 0]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float(out.covariance[1, 1]), 0.25 * np.exp(0.5) ** 2, rtol=1e-6)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        build_fitter(statistic, params, frozen=("a", "b"))


def test_best_fit_is_differentiable_with_respect_to_the_data():
    """Implicit differentiation: d(best a)/d(data) from the implicit-function theorem."""
    from bgcube.fit import Parameter

    params = (Parameter("a", 1.0), Parameter("b", 1.0, min=0.0))

    def statistic(values, target):
        a, b = values
        return (a - target[0]) ** 2 + (b - target[1]) ** 2 + 0.5 * (a - b) ** 2

    fitter = build_fitter(statistic, params)

    def best_a(target):
        return fitter(jnp.asarray([0.0, 0.0]), target).values[0]

    target = jnp.asarray([2.0, 3.0])
    grad = np.asarray(jax.grad(best_a)(target))
    # minimum: a = (3 t0 + t1) / 4
    np.testing.assert_allclose(grad, [0.75, 0.25], rtol=1e-6)

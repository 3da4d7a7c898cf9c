"""Gradients through weighted event filling and the time normalisation (JAX), and the example."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="gradients need JAX")

import jax.numpy as jnp  # noqa: E402

from bgcube.array import Binning, bin_volume, compute_rate, fill_histogram  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fit_event_weights.py"

E_EDGES = np.geomspace(0.5, 20, 5)
FOV = np.linspace(-2, 2, 5)
BINNINGS = (Binning.from_edges(E_EDGES), Binning.from_edges(FOV), Binning.from_edges(FOV))


def events(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(np.log(0.4), np.log(25), n))  # some outside the cube
    return tuple(
        jnp.asarray(a) for a in (energy, rng.uniform(-2.2, 2.2, n), rng.uniform(-2.2, 2.2, n))
    )


@pytest.mark.parametrize("method", ["jax", "portable"])
def test_gradient_flows_through_weighted_filling(method):
    energy, dety, detx = events()
    target = jnp.asarray(np.random.default_rng(1).uniform(5, 50, (4, 4, 4)))

    def loss(theta):
        weights = jnp.exp(-theta * jnp.log(energy)) * (1 + 0.1 * theta * detx)
        counts = fill_histogram(energy, dety, detx, BINNINGS, weights=weights, method=method)
        return jnp.sum((counts - target) ** 2)

    grad = float(jax.grad(loss)(0.3))
    jitted = float(jax.jit(jax.grad(loss))(0.3))
    h = 1e-6
    fd = (float(loss(0.3 + h)) - float(loss(0.3 - h))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    np.testing.assert_allclose(jitted, grad, rtol=1e-12)
    # the fill is linear in the weights: its Jacobian is the bin membership of each event
    jac = jax.jacobian(
        lambda w: fill_histogram(energy, dety, detx, BINNINGS, weights=w, method=method)
    )(jnp.ones(energy.shape))
    membership = np.asarray(jac).reshape(64, -1)
    inside = np.asarray(fill_histogram(energy, dety, detx, BINNINGS, method=method)).sum()
    assert set(np.unique(membership)) <= {0.0, 1.0}
    assert membership.sum() == inside and np.all(membership.sum(axis=0) <= 1)


def test_gradient_flows_through_the_time_normalisation():
    energy, dety, detx = events(seed=2)
    counts = fill_histogram(energy, dety, detx, BINNINGS)
    volume = bin_volume(jnp.asarray(E_EDGES), jnp.asarray(FOV), jnp.asarray(FOV))
    time = jnp.full(counts.shape, 100.0).at[0, 0, 0].set(0.0)  # one bin never observed

    def total_rate(scale):
        return jnp.sum(compute_rate(counts, time * scale, volume))

    grad = float(jax.grad(total_rate)(2.0))
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, -float(total_rate(2.0)) / 2.0, rtol=1e-12)
    # per bin: d rate / d time = -rate / time, and 0 where the time is 0
    per_bin = jax.grad(lambda t: jnp.sum(compute_rate(counts, t, volume)))(time)
    rate = compute_rate(counts, time, volume)
    expected = np.where(np.asarray(time) > 0, -np.asarray(rate) / np.where(time > 0, time, 1), 0)
    np.testing.assert_allclose(np.asarray(per_bin), expected, rtol=1e-12)
    assert float(per_bin[0, 0, 0]) == 0.0


def test_event_weight_example_fits_its_parameters(tmp_path):
    spec = importlib.util.spec_from_file_location("fit_event_weights", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(tmp_path, n_reference=300_000, seed=3)
    assert result["status"] == 0
    np.testing.assert_allclose(result["gradient"], result["finite_difference"], rtol=1e-6)
    truth = np.array([example.TRUE_DELTA, example.TRUE_TIME_SCALE])
    # the reference sample's own noise is not in the errors, hence 4 rather than 2 sigma
    assert np.all(np.abs(result["values"] - truth) < 4 * result["errors"]), result
    assert (tmp_path / "fit_event_weights.png").stat().st_size > 10_000

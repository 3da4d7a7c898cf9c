"""Fit event weights through histogram filling (JAX gradients)
===========================================================

Fit parameters that act on event weights, with gradients through histogram filling.

Usage: python fit_event_weights.py [output_folder]   (a PNG is written there if given)

A reference event sample (think of a simulation, or a sample of runs taken
under other conditions) is drawn with a power-law spectrum of index 2.0.
An observation has the same field-of-view shape but a softer spectrum and an
unknown exposure. The background of the observation is predicted from the
reference sample by

* re-weighting each reference event by ``(E / 1 TeV) ** -delta_index``,
  filled with `bgcube.array.fill_histogram(..., weights=...)`;
* turning the weighted counts into a rate with `bgcube.array.compute_rate`,
  whose time is the reference's time divided by ``time_scale``;
* multiplying the rate by the observation's time and the bin volumes.

``delta_index`` and ``time_scale`` are then fitted to the observation's
counts (Cash statistic) with bgcube's damped-Newton fitter. Gradient and
Hessian come from JAX, straight through the weighted fill and the time
normalisation; the script checks the gradient against finite differences.
"""

import sys
from pathlib import Path

import jax
import numpy as np

# this script's own choice: bgcube computes in float64 and never switches it on for you
jax.config.update("jax_enable_x64", True)

from bgcube import get_namespace  # noqa: E402

jnp = get_namespace("jax")

from bgcube.array import Binning, bin_volume, compute_rate, fill_histogram  # noqa: E402
from bgcube.fit import Parameter, build_fitter, cash  # noqa: E402

TRUE_DELTA = 0.7
TRUE_TIME_SCALE = 1.8
PARAMETERS = (Parameter("delta_index", 0.0), Parameter("time_scale", 1.0, min=0.0))


def power_law_energies(rng, n, index, e_min=0.3, e_max=30.0):
    """Energies (TeV) drawn from ``E**-index`` between ``e_min`` and ``e_max``."""
    a, b = e_min ** (1 - index), e_max ** (1 - index)
    return (a + rng.uniform(size=n) * (b - a)) ** (1 / (1 - index))


def gaussian_offsets(rng, n, width=1.5):
    """DETX, DETY (deg) of a symmetric Gaussian field-of-view shape."""
    return rng.normal(0, width, n), rng.normal(0, width, n)


def predicted_counts(values, events, binnings, volume, reference_time, observation_time):
    """Expected counts of the observation: weighted fill -> rate -> times the observation's time."""
    delta, time_scale = values[0], values[1]
    energy, dety, detx = events
    weights = jnp.exp(-delta * jnp.log(energy))
    counts = fill_histogram(energy, dety, detx, binnings, weights=weights)
    time = jnp.full(counts.shape, reference_time / time_scale)
    rate = compute_rate(counts, time, volume)
    return rate * observation_time * volume


def main(outdir=None, n_reference=1_000_000, seed=1):
    rng = np.random.default_rng(seed)
    energy_edges = np.geomspace(0.3, 30, 11)
    fov_edges = np.linspace(-4, 4, 17)
    binnings = (
        Binning.from_edges(energy_edges),
        Binning.from_edges(fov_edges),
        Binning.from_edges(fov_edges),
    )
    volume = bin_volume(jnp.asarray(energy_edges), jnp.asarray(fov_edges), jnp.asarray(fov_edges))

    # the reference sample: index 2.0, observed for 100 h
    reference_time = 100 * 3600.0
    e_ref = power_law_energies(rng, n_reference, 2.0)
    x_ref, y_ref = gaussian_offsets(rng, n_reference)
    events = tuple(jnp.asarray(a) for a in (e_ref, y_ref, x_ref))

    # the observation: index 2.7 and a rate TRUE_TIME_SCALE times higher per unit time
    observation_time = 20 * 3600.0
    truth = jnp.asarray([TRUE_DELTA, TRUE_TIME_SCALE])
    # the expected counts of the truth, computed from a large independent sample
    big = 4_000_000
    e_big = power_law_energies(rng, big, 2.0)
    x_big, y_big = gaussian_offsets(rng, big)
    expected = predicted_counts(
        truth,
        tuple(jnp.asarray(a) for a in (e_big, y_big, x_big)),
        binnings,
        volume,
        reference_time * big / n_reference,
        observation_time,
    )
    observed = jnp.asarray(rng.poisson(np.asarray(expected)).astype(float))

    def statistic(values, data):
        mu = predicted_counts(values, data, binnings, volume, reference_time, observation_time)
        return cash(mu, observed, mu > 0)

    # gradients flow through the weighted fill and the time normalisation
    point = jnp.asarray([0.5, 1.5])
    grad = jax.grad(statistic)(point, events)
    h = 1e-6
    finite_diff = [
        (statistic(point.at[i].add(h), events) - statistic(point.at[i].add(-h), events)) / (2 * h)
        for i in range(2)
    ]
    print(
        f"gradient at {np.asarray(point)}: JAX {np.asarray(grad)}, "
        f"finite differences {np.asarray(finite_diff)}"
    )

    fitter = jax.jit(build_fitter(statistic, PARAMETERS))
    start = jnp.asarray([0.0, 0.0])  # internal values: delta 0, time_scale 1
    out = fitter(start, events)
    errors = np.sqrt(np.diag(np.asarray(out.covariance)))
    values = np.asarray(out.values)
    print(
        f"fit status {int(out.status)} after {int(out.n_iter)} iterations, "
        f"Cash statistic {float(out.statistic):.1f} for {observed.size} bins"
    )
    for p, value, error, true in zip(
        PARAMETERS, values, errors, (TRUE_DELTA, TRUE_TIME_SCALE), strict=True
    ):
        print(f"  {p.name:<12s} {value:.4f} +- {error:.4f}   (true {true})")

    if outdir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        fitted = predicted_counts(
            out.values, events, binnings, volume, reference_time, observation_time
        )
        start_mu = predicted_counts(
            jnp.asarray([0.0, 1.0]), events, binnings, volume, reference_time, observation_time
        )
        centers = np.sqrt(energy_edges[1:] * energy_edges[:-1])
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.errorbar(
            centers,
            np.asarray(observed).sum(axis=(1, 2)),
            yerr=np.sqrt(np.asarray(observed).sum(axis=(1, 2))),
            fmt="o",
            label="observed counts",
        )
        ax.plot(centers, np.asarray(start_mu).sum(axis=(1, 2)), "--", label="reference, unweighted")
        ax.plot(
            centers,
            np.asarray(fitted).sum(axis=(1, 2)),
            "-",
            label=f"re-weighted fit: delta_index {values[0]:.3f}",
        )
        ax.set(xscale="log", yscale="log", xlabel="Energy [TeV]", ylabel="Counts per bin")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / "fit_event_weights.png")
        plt.close(fig)

    return {
        "values": values,
        "errors": errors,
        "status": int(out.status),
        "gradient": np.asarray(grad),
        "finite_difference": np.asarray(finite_diff),
    }


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)

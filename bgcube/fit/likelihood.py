"""The Poisson (Cash) fit statistic of a counts cube, and the data it needs.

For counts ``n`` and expected counts ``mu`` in the bins of a mask, bgcube
uses the Cash statistic in its deviance form (Cash 1979, with the constant
that makes it zero for a perfect fit, as XSPEC's *cstat*)::

    C = 2 * sum(mu - n + n * ln(n / mu))

It differs from ``-2 ln L`` by a constant of the data, so fits, gradients
and Hessians are the same, ``C`` is never negative, and for large counts it
behaves as a chi-square with (number of bins - number of free parameters)
degrees of freedom. ``Delta C = 1`` is one standard deviation on one
parameter, so the covariance of the parameters is ``2 * inverse(Hessian of C)``.

Bins outside the mask contribute nothing, whatever their values (also NaN),
and the derivatives stay finite where ``n = 0`` or ``mu = 0``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ..array.namespace import with_jax_x64
from .geometry import BinGeometry, expected_counts

if TYPE_CHECKING:
    from ..model import FOVCubeBackgroundModel
    from .geometry import BinGeometry
    from .models import RateModel

__all__ = ["cash", "cash_terms", "deviance_residuals", "FitData", "model_statistic"]


def cash_terms(mu: jnp.ndarray, counts: jnp.ndarray) -> jnp.ndarray:
    """Per-bin Cash deviance ``2 * (mu - n + n ln(n / mu))`` (JAX).

    Parameters
    ----------
    mu, counts : jax.Array
        Expected and observed counts, same shape.

    Returns
    -------
    terms : jax.Array
        ``+inf`` where ``mu = 0 < n``; ``2 mu`` where ``n = 0``.
    """
    mu = jnp.asarray(mu, dtype=jnp.float64)
    n = jnp.asarray(counts, dtype=jnp.float64)
    has_counts = n > 0
    safe_n = jnp.where(has_counts, n, 1.0)
    safe_mu = jnp.where(has_counts, mu, 1.0)
    log_term = jnp.where(has_counts, n * (jnp.log(safe_n) - jnp.log(safe_mu)), 0.0)
    return 2.0 * (mu - n + log_term)


def cash(mu: jnp.ndarray, counts: jnp.ndarray, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """Cash statistic ``C`` summed over the bins of ``mask`` (JAX, float64).

    Parameters
    ----------
    mu, counts : jax.Array
        Expected and observed counts, same shape.
    mask : jax.Array of bool, optional
        Bins to use (default: all).

    Returns
    -------
    c : jax.Array
        Scalar.
    """
    if mask is None:
        return jnp.sum(cash_terms(mu, counts))
    # neutral values outside the mask, so that no NaN or inf reaches a derivative
    terms = cash_terms(jnp.where(mask, mu, 1.0), jnp.where(mask, counts, 1.0))
    return jnp.sum(jnp.where(mask, terms, 0.0))


def deviance_residuals(mu: Any, counts: Any) -> np.ndarray:
    """Signed residual significance ``sign(n - mu) * sqrt(C_bin)`` per bin (host NumPy).

    For large counts it tends to ``(n - mu) / sqrt(mu)``; for few counts it
    is the likelihood-ratio significance of the bin's deviation.

    Parameters
    ----------
    mu, counts : array_like
        Expected and observed counts.

    Returns
    -------
    residuals : numpy.ndarray
    """
    mu = np.asarray(mu, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    terms = np.asarray(cash_terms(mu, n))
    return np.sign(n - mu) * np.sqrt(np.maximum(terms, 0.0))


class FitData(NamedTuple):
    """What a binned fit needs, as a JAX pytree (pass it to jitted or vmapped fits).

    Attributes
    ----------
    counts : jax.Array
        Observed counts ``(nE, ny, nx)``, float64, outside exclusion regions.
    time : jax.Array
        Observation time per bin in s ``(nE, ny, nx)``, already reduced by
        the kept (non-excluded) fraction of each bin.
    mask : jax.Array of bool
        Bins used in the fit; by default those with ``time > 0``.
    geometry : BinGeometry
    """

    counts: jnp.ndarray
    time: jnp.ndarray
    mask: jnp.ndarray
    geometry: BinGeometry

    @classmethod
    @with_jax_x64
    def from_arrays(
        cls, counts: Any, time: Any, geometry: BinGeometry, mask: Any = None
    ) -> FitData:
        """Data from host or backend arrays (copied to JAX float64).

        Parameters
        ----------
        counts, time : array_like
            Shape ``(nE, ny, nx)``; ``time`` in s (or broadcastable).
        geometry : BinGeometry
        mask : array_like of bool, optional
            Also drop bins where this is False.

        Raises
        ------
        ValueError
            If the shapes do not match the geometry, or counts or times are
            negative or not finite inside the mask.
        """
        counts = _host(counts)
        time = np.broadcast_to(_host(time), counts.shape)
        if counts.shape != geometry.shape:
            raise ValueError(
                f"counts shape {counts.shape} does not match the geometry {geometry.shape}"
            )
        use = time > 0
        if mask is not None:
            use &= np.broadcast_to(_host(mask).astype(bool), counts.shape)
        for name, a in (("counts", counts), ("time", time)):
            bad = use & ~(np.isfinite(a) & (a >= 0))
            if np.any(bad):
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"{name} must be finite and >= 0 in the fitted bins; bin {idx} holds {a[idx]}"
                )
        return cls(
            jnp.asarray(np.where(use, counts, 0.0)),
            jnp.asarray(np.where(use, time, 0.0)),
            jnp.asarray(use),
            geometry,
        )

    @classmethod
    @with_jax_x64
    def from_model(
        cls, bg_model: FOVCubeBackgroundModel, mask: Any = None, **geometry_kwargs: Any
    ) -> FitData:
        """Data from a `~bgcube.FOVCubeBackgroundModel`'s counts and time cubes.

        Parameters
        ----------
        bg_model : bgcube.FOVCubeBackgroundModel
            With ``counts_cube`` and ``livetime_cube`` (any backend).
        mask : array_like of bool, optional
            Bins to use besides those with time.
        **geometry_kwargs
            Quadrature settings, see `BinGeometry.from_edges`.
        """
        import astropy.units as u

        for name in ("counts_cube", "livetime_cube"):
            if getattr(bg_model, name) is None:
                raise ValueError(f"fitting needs the model's {name}, which is None")
        counts, times = bg_model.counts_cube, bg_model.livetime_cube
        geometry = BinGeometry.from_cube(counts, **geometry_kwargs)
        seconds = float(u.Unit(times.unit).to(u.s))
        return cls.from_arrays(counts.data, times.data * seconds, geometry, mask)

    @property
    def n_bins(self) -> int:
        """Number of bins in the fit."""
        return int(np.count_nonzero(np.asarray(self.mask)))


def _host(a):
    """A float64 NumPy copy of a backend array, or of anything ``numpy.asarray`` takes."""
    from ..backend import to_numpy

    if hasattr(a, "__array_namespace__"):
        a = to_numpy(a)
    return np.asarray(a, dtype=np.float64)


def model_statistic(model: RateModel, values: jnp.ndarray, data: FitData) -> jnp.ndarray:
    """Cash statistic of a rate model with physical ``values`` on ``data`` (JAX)."""
    mu = expected_counts(model, values, data.geometry, data.time)
    return cash(mu, data.counts, data.mask)

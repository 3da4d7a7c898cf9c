"""Minimising a fit statistic with exact JAX derivatives: the fitter and its covariance.

The minimiser is a damped Newton method (Levenberg-Marquardt on the exact
Hessian) written entirely in JAX (``lax.while_loop``), so a whole fit is one
pure function: it can be jitted once and vmapped over many data sets. Each
iteration solves ``(H + lambda D) step = -g`` in the eigenbasis of the
Hessian scaled to unit diagonal (``D``), with ``|eigenvalue|`` in place of
the eigenvalue so that it never climbs towards a saddle. A step is kept if
it does not increase the statistic (then ``lambda`` shrinks tenfold towards
pure Newton), otherwise ``lambda`` grows tenfold.

It stops with a status code:

== =====================================================================
0  converged: the Newton decrement ``g^T H^-1 g`` is below ``tol`` (the
   remaining distance to the minimum is ``sqrt(tol / 2)`` standard
   deviations) and the Hessian is positive definite
1  the maximum number of iterations was reached
2  the statistic, its gradient or its Hessian is not finite at the start
3  the decrement is below ``tol`` but the Hessian is not positive
   definite: a parameter is unconstrained or degenerate with others, and
   the covariance is meaningless
4  stalled: no step, however short, decreases the statistic
== =====================================================================

The covariance of the free parameters is ``2 * inverse(Hessian)`` of the
Cash statistic (``Delta C = 1`` is one sigma), computed in the internal
(unbounded) parameters and carried to the physical ones with the
transform's Jacobian. The solution is implicitly differentiable
(``jax.lax.custom_root``): derivatives of best-fit values with respect to
the data or to anything the statistic closes over follow from the
implicit-function theorem, not from unrolling the iterations.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..array.namespace import with_jax_x64
from .likelihood import FitData, model_statistic
from .parameters import parameter_index, to_internal, to_physical, transform_jacobian
from .result import STATUS_MESSAGES, FitError, FitResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .likelihood import FitData
    from .models import RateModel
    from .parameters import Parameter

__all__ = [
    "FitError",
    "FitOutput",
    "FitResult",
    "STATUS_MESSAGES",
    "build_fitter",
    "fit",
    "make_fitter",
    "start_values",
]

_RUNNING = -1
_RCOND = 1e-10
_LAMBDA_START, _LAMBDA_MIN, _LAMBDA_MAX = 1e-3, 1e-12, 1e12


class FitOutput(NamedTuple):
    """Everything a jitted fit returns, as JAX arrays (vmap adds a leading axis).

    Attributes
    ----------
    internal : jax.Array
        Best-fit internal (unbounded) values of all parameters.
    values : jax.Array
        Best-fit physical values of all parameters (frozen ones unchanged).
    covariance : jax.Array
        Covariance of the physical values; rows and columns of frozen
        parameters are zero.
    statistic : jax.Array
        Fit statistic (Cash) at the best fit.
    status : jax.Array
        Integer status, see `STATUS_MESSAGES`.
    n_iter : jax.Array
        Iterations used.
    decrement : jax.Array
        Final Newton decrement ``g^T H^-1 g``.
    """

    internal: jnp.ndarray
    values: jnp.ndarray
    covariance: jnp.ndarray
    statistic: jnp.ndarray
    status: jnp.ndarray
    n_iter: jnp.ndarray
    decrement: jnp.ndarray


class _State(NamedTuple):
    z: jnp.ndarray
    f: jnp.ndarray
    g: jnp.ndarray
    h: jnp.ndarray
    lam: jnp.ndarray
    it: jnp.ndarray
    status: jnp.ndarray
    decrement: jnp.ndarray


def _scaled_eigh(g, h):
    """Eigen-decomposition of the Hessian scaled to unit diagonal, and the scaled gradient."""
    diag = jnp.abs(jnp.diag(h))
    d = jnp.sqrt(jnp.maximum(diag, 1e-8 * jnp.max(diag) + 1e-300))
    eigval, eigvec = jnp.linalg.eigh(h / (d[:, None] * d[None, :]))
    return d, eigval, eigvec, eigvec.T @ (g / d)


def _decrement(g, h):
    """Newton decrement (pseudo-inverse on the non-degenerate directions) and positive-definiteness."""
    _, eigval, _, proj = _scaled_eigh(g, h)
    scale = jnp.max(jnp.abs(eigval))
    keep = jnp.abs(eigval) > _RCOND * scale
    dec = jnp.sum(jnp.where(keep, proj**2 / jnp.where(keep, jnp.abs(eigval), 1.0), 0.0))
    return dec, jnp.min(eigval) > _RCOND * scale


def _step(g, h, lam):
    d, eigval, eigvec, proj = _scaled_eigh(g, h)
    return -(eigvec @ (proj / (jnp.abs(eigval) + lam))) / d


def _finite(*arrays):
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(a)) for a in arrays])


def _status(dec, pd, it, lam, max_iter, tol):
    return jnp.where(
        dec < tol,
        jnp.where(pd, 0, 3),
        jnp.where(it >= max_iter, 1, jnp.where(lam > _LAMBDA_MAX, 4, _RUNNING)),
    )


def _value_grad_hessian(fun):
    """``z -> (f, g, H)`` in one forward-over-reverse pass (the Hessian's primal gives f and g)."""

    def grad_with_aux(z):
        f, g = jax.value_and_grad(fun)(z)
        return g, (f, g)

    def evaluate(z):
        h, (f, g) = jax.jacfwd(grad_with_aux, has_aux=True)(z)
        return f, g, h

    return evaluate


def _minimize(fun, z0, max_iter, tol):
    """Damped Newton from ``z0`` on a scalar function; returns the final `_State`.

    The first pass of the loop evaluates the start point (a zero step from
    an infinite statistic), so the derivatives appear once in the compiled
    program.
    """
    evaluate = _value_grad_hessian(fun)
    n = z0.shape[0]
    state = _State(
        z0,
        jnp.asarray(jnp.inf),
        jnp.zeros(n),
        jnp.zeros((n, n)),
        jnp.asarray(_LAMBDA_START),
        jnp.asarray(0),
        jnp.asarray(_RUNNING),
        jnp.asarray(jnp.inf),
    )

    def body(s):
        first = jnp.isposinf(s.f)  # the start point is not evaluated yet
        z_new = s.z + jnp.where(first, 0.0, _step(s.g, s.h, s.lam))
        f_new, g_new, h_new = evaluate(z_new)
        ok = _finite(z_new, f_new, g_new, h_new) & (f_new <= s.f + 1e-12 * (jnp.abs(s.f) + 1.0))
        z = jnp.where(ok, z_new, s.z)
        f = jnp.where(ok, f_new, s.f)
        g = jnp.where(ok, g_new, s.g)
        h = jnp.where(ok, h_new, s.h)
        lam = jnp.where(
            first, s.lam, jnp.where(ok, jnp.maximum(0.1 * s.lam, _LAMBDA_MIN), 10.0 * s.lam)
        )
        dec, pd = _decrement(g, h)
        it = s.it + jnp.where(first, 0, 1)
        status = jnp.where(first & ~ok, 2, _status(dec, pd, it, lam, max_iter, tol))
        return _State(z, f, g, h, lam, it, status, dec)

    return jax.lax.while_loop(lambda s: s.status == _RUNNING, body, state)


def build_fitter(
    statistic: Callable[..., Any],
    parameters: Sequence[Parameter],
    frozen: Sequence[str] = (),
    *,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> Callable[..., FitOutput]:
    """A pure, jittable fit function for any statistic of physical parameter values.

    Parameters
    ----------
    statistic : callable
        ``statistic(values, data) -> scalar`` (JAX), e.g. a Cash statistic.
    parameters : tuple of Parameter
    frozen : sequence of str
        Names of parameters kept at their start values.
    max_iter : int
        Maximum number of iterations.
    tol : float
        Convergence threshold on the Newton decrement (see the module docstring).

    Returns
    -------
    fitter : callable
        ``fitter(internal_start, data) -> FitOutput``, not yet jitted;
        wrap it in ``jax.jit`` and, for many data sets, ``jax.vmap``.
    """
    parameters = tuple(parameters)
    fixed = set(parameter_index(parameters, frozen))
    free = np.array([i for i in range(len(parameters)) if i not in fixed], dtype=int)
    if free.size == 0:
        raise ValueError("every parameter is frozen: nothing to fit")

    def fitter(z_start, data):
        z_start = jnp.asarray(z_start, dtype=jnp.float64)

        def full(z_free):
            return z_start.at[free].set(z_free)

        def objective(z_free):
            return statistic(to_physical(parameters, full(z_free)), data)

        def solve(_, z_free0):
            s = _minimize(objective, z_free0, max_iter, tol)
            # custom_root needs floating auxiliary outputs (it makes float tangents for them)
            return s.z, s._replace(it=s.it.astype(float), status=s.status.astype(float))

        def tangent_solve(linear, y):
            return jnp.linalg.solve(jax.jacobian(linear)(y), y)

        z_free, s = jax.lax.custom_root(
            jax.grad(objective), z_start[free], solve, tangent_solve, has_aux=True
        )
        z = full(z_free)
        values = to_physical(parameters, z)
        jac = transform_jacobian(parameters, z)[free]
        cov_free = 2.0 * jnp.linalg.inv(s.h) * jac[:, None] * jac[None, :]
        cov = jnp.zeros((len(parameters), len(parameters))).at[jnp.ix_(free, free)].set(cov_free)
        return FitOutput(
            z, values, cov, objective(z_free), s.status.astype(int), s.it.astype(int), s.decrement
        )

    return fitter


@functools.lru_cache(maxsize=32)
def make_fitter(model, frozen=(), max_iter=100, tol=1e-8):
    """The jitted Cash fit of a rate model, compiled once per model and data shape.

    Parameters
    ----------
    model : bgcube.fit.models.RateModel
        A (hashable) rate model.
    frozen : tuple of str
        Parameters kept at their start values.
    max_iter : int
    tol : float
        See `build_fitter`.

    Returns
    -------
    fitter : callable
        ``fitter(internal_start, data: FitData) -> FitOutput``, jitted. For
        many data sets of one shape, use ``jax.jit(jax.vmap(fitter))``,
        with start values from `start_values` stacked along a first axis.
    """
    statistic = functools.partial(model_statistic, model)
    return jax.jit(
        build_fitter(statistic, model.parameters, tuple(frozen), max_iter=max_iter, tol=tol)
    )


def start_values(model: RateModel, data: FitData, init: Any = None) -> np.ndarray:
    """Internal start values of a fit (host NumPy).

    Parameters
    ----------
    model : bgcube.fit.models.RateModel
    data : FitData
    init : dict or array_like, optional
        Physical start values: all of them (array), or some by name (dict)
        on top of the model's estimate from the data.

    Returns
    -------
    internal : numpy.ndarray
    """
    if init is not None and not isinstance(init, dict):
        return to_internal(model.parameters, init)
    mask = np.asarray(data.mask)
    counts = np.where(mask, np.asarray(data.counts), 0.0)
    time = np.where(mask, np.asarray(data.time), 0.0)
    values = np.asarray(model.initial_values(counts, time, data.geometry), dtype=float)
    for name, value in (init or {}).items():
        values[parameter_index(model.parameters, [name])[0]] = value
    return to_internal(model.parameters, values)


@with_jax_x64
def fit(
    model: RateModel,
    data: FitData,
    init: Any = None,
    *,
    frozen: Sequence[str] = (),
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FitResult:
    """Fit a rate model to a counts cube by minimising the Cash statistic.

    Parameters
    ----------
    model : bgcube.fit.models.RateModel
    data : FitData
        Counts, exclusion-corrected times and geometry.
    init : dict or array_like, optional
        Start values (see `start_values`); by default estimated from the data.
    frozen : sequence of str
        Parameters kept at their start values.
    max_iter : int
        Maximum number of iterations.
    tol : float
        Convergence threshold on the Newton decrement.

    Returns
    -------
    result : FitResult
        Check ``result.success`` (or call ``result.raise_for_status()``).

    Raises
    ------
    ValueError
        Unknown parameter names, or start values outside the bounds.
    """
    if not isinstance(data, FitData):
        raise TypeError(f"data must be a FitData, got {type(data).__name__}")
    frozen = tuple(frozen)
    z0 = start_values(model, data, init)
    output = make_fitter(model, frozen, int(max_iter), float(tol))(jnp.asarray(z0), data)
    return FitResult.from_output(output, model, model.parameters, data.n_bins, frozen)

"""Fit parameters and their bounds, through smooth transforms to unbounded internal values.

The optimiser works on unbounded *internal* values ``z``; each parameter maps
them to its *physical* value ``x`` according to its bounds:

============ ============================ ==========================
bounds       physical value               internal value
============ ============================ ==========================
none         ``x = z``                    ``z = x``
``min``      ``x = min + exp(z)``         ``z = log(x - min)``
``max``      ``x = max - exp(z)``         ``z = log(max - x)``
both         ``x = min + (max - min) *    ``z = logit((x - min) /
             sigmoid(z)``                 (max - min))``
============ ============================ ==========================

so a positive parameter (``min=0``) is fitted in its logarithm. The
transforms are written per parameter (a short Python loop over a static
tuple), never with ``where`` over all kinds at once, so that an overflow in
a branch not taken cannot poison a gradient with NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Parameter", "to_internal", "to_physical", "transform_jacobian", "parameter_index"]


@dataclass(frozen=True)
class Parameter:
    """One model parameter: name, start value, unit and optional bounds.

    Parameters
    ----------
    name : str
        Unique name within its model.
    value : float
        Default start value (physical).
    unit : str
        Unit of the physical value, for documentation and tables ('' if none).
    min, max : float, optional
        Open bounds of the physical value (``min < x < max``).

    Examples
    --------
    >>> Parameter("width", 2.0, "deg", min=0.0).kind
    'lower'
    """

    name: str
    value: float
    unit: str = ""
    min: float | None = None
    max: float | None = None

    def __post_init__(self):
        lo, hi = self.min, self.max
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"parameter {self.name!r}: min={lo} must be below max={hi}")
        if not self.contains(self.value):
            raise ValueError(
                f"parameter {self.name!r}: start value {self.value} outside its bounds ({lo}, {hi})"
            )

    @property
    def kind(self) -> str:
        """Transform kind: 'free', 'lower', 'upper' or 'interval'."""
        if self.min is None:
            return "free" if self.max is None else "upper"
        return "lower" if self.max is None else "interval"

    def contains(self, value: float) -> bool:
        """Whether a physical value lies strictly inside the bounds (and is finite)."""
        value = float(value)
        if not math.isfinite(value):
            return False
        return (self.min is None or value > self.min) and (self.max is None or value < self.max)


def _forward(p: Parameter, z):
    kind = p.kind
    if kind == "free":
        return z
    if kind == "lower":
        return p.min + jnp.exp(z)
    if kind == "upper":
        return p.max - jnp.exp(z)
    return p.min + (p.max - p.min) * jax.nn.sigmoid(z)


def _inverse(p: Parameter, x: float) -> float:
    kind = p.kind
    if kind == "free":
        return x
    if kind == "lower":
        return math.log(x - p.min)
    if kind == "upper":
        return math.log(p.max - x)
    t = (x - p.min) / (p.max - p.min)
    return math.log(t) - math.log1p(-t)


def to_physical(parameters, z):
    """Physical values from internal values (JAX, differentiable).

    Parameters
    ----------
    parameters : tuple of Parameter
    z : jax.Array
        Internal values, shape ``(n,)``.

    Returns
    -------
    x : jax.Array
        Physical values, shape ``(n,)``.
    """
    return jnp.stack([_forward(p, z[i]) for i, p in enumerate(parameters)])


def to_internal(parameters, values) -> np.ndarray:
    """Internal values from physical values (host, NumPy).

    Parameters
    ----------
    parameters : tuple of Parameter
    values : sequence of float
        Physical values, one per parameter.

    Returns
    -------
    z : numpy.ndarray of float64

    Raises
    ------
    ValueError
        If a value lies on or outside its parameter's bounds, or is not finite.
    """
    values = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    if len(values) != len(parameters):
        raise ValueError(f"expected {len(parameters)} values, got {len(values)}")
    for p, v in zip(parameters, values, strict=True):
        if not p.contains(v):
            raise ValueError(
                f"parameter {p.name!r}: value {v} outside its bounds ({p.min}, {p.max})"
            )
    return np.array([_inverse(p, v) for p, v in zip(parameters, values, strict=True)])


def transform_jacobian(parameters, z):
    """Derivatives ``dx_i / dz_i`` of the (diagonal) transform, shape ``(n,)``."""
    return jnp.stack(
        [jax.grad(lambda t, p=p: _forward(p, t))(z[i]) for i, p in enumerate(parameters)]
    )


def parameter_index(parameters, names) -> tuple[int, ...]:
    """Positions of ``names`` in ``parameters``.

    Raises
    ------
    ValueError
        If a name is not a parameter of the model; the message lists them.
    """
    known = [p.name for p in parameters]
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"unknown parameter(s) {missing}; the model has {known}")
    return tuple(known.index(n) for n in names)

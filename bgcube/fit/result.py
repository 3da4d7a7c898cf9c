"""The outcome of a fit on the host: values, errors, covariance, statistic and status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BgcubeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .parameters import Parameter

__all__ = ["FitError", "FitResult", "STATUS_MESSAGES"]

#: Status code -> message of a fit.
STATUS_MESSAGES = {
    0: "converged",
    1: "maximum number of iterations reached",
    2: "statistic, gradient or Hessian not finite at the start values",
    3: "Hessian not positive definite at the minimum (unconstrained or degenerate parameters)",
    4: "stalled: no step decreases the statistic",
}


class FitError(BgcubeError, RuntimeError):
    """A fit did not converge; the message gives the reason."""


@dataclass
class FitResult:
    """Outcome of a fit, on the host.

    Attributes
    ----------
    model : object
        The fitted model.
    names : tuple of str
        Parameter names.
    units : tuple of str
        Parameter units.
    values, errors : numpy.ndarray
        Best-fit physical values and their standard deviations (0 for frozen).
    covariance : numpy.ndarray
        Covariance of the physical values.
    statistic : float
        Cash statistic at the best fit (deviance form).
    n_bins : int
        Bins in the fit.
    n_free : int
        Free parameters.
    status : int
        See `STATUS_MESSAGES`.
    n_iter : int
    frozen : tuple of str
    """

    model: object
    names: tuple
    units: tuple
    values: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    statistic: float
    n_bins: int
    n_free: int
    status: int
    n_iter: int
    frozen: tuple = ()

    @classmethod
    def from_output(
        cls,
        output: Any,
        model: Any,
        parameters: Sequence[Parameter],
        n_bins: int,
        frozen: Sequence[str] = (),
    ) -> FitResult:
        """Host result from a `FitOutput` (one fit, not a vmapped batch)."""
        cov = np.asarray(output.covariance)
        return cls(
            model=model,
            names=tuple(p.name for p in parameters),
            units=tuple(p.unit for p in parameters),
            values=np.asarray(output.values),
            errors=np.sqrt(np.clip(np.diag(cov), 0.0, None)),
            covariance=cov,
            statistic=float(output.statistic),
            n_bins=int(n_bins),
            n_free=len(parameters) - len(frozen),
            status=int(output.status),
            n_iter=int(output.n_iter),
            frozen=tuple(frozen),
        )

    @property
    def success(self) -> bool:
        """Whether the fit converged with a positive-definite Hessian."""
        return self.status == 0

    @property
    def message(self) -> str:
        """Why the fit stopped."""
        return STATUS_MESSAGES[self.status]

    @property
    def parameters(self) -> dict:
        """Best-fit values by name."""
        return dict(zip(self.names, self.values.tolist(), strict=True))

    @property
    def correlation(self) -> np.ndarray:
        """Correlation matrix of the parameters (0 for frozen ones)."""
        e = np.where(self.errors > 0, self.errors, np.inf)
        return self.covariance / e[:, None] / e[None, :]

    @property
    def dof(self) -> int:
        """Degrees of freedom, bins minus free parameters."""
        return self.n_bins - self.n_free

    def raise_for_status(self) -> FitResult:
        """Raise `FitError` unless the fit converged; return self otherwise."""
        if not self.success:
            raise FitError(
                f"the {getattr(self.model, 'name', 'model')} fit failed after {self.n_iter} "
                f"iterations: {self.message}"
            )
        return self

    def __str__(self):
        lines = [
            f"{type(self).__name__}: {self.message} after {self.n_iter} iterations, "
            f"Cash statistic {self.statistic:.2f} for {self.dof} degrees of freedom",
        ]
        for name, value, error, unit in zip(
            self.names, self.values, self.errors, self.units, strict=True
        ):
            note = " (frozen)" if name in self.frozen else f" +- {error:.4g}"
            lines.append(f"  {name:<16s} {value:.6g}{note} {unit}".rstrip())
        return "\n".join(lines)

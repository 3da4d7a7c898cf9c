"""The family of the joint background model: bases, their ranges, penalties, fit binning.

`JointModelSpec` holds every fixed choice of the model (not the fitted
coefficients): the energy range and binning, the field-of-view binning of
the fit and of the written cubes, the B-spline bases and their penalties,
and the widths of the night and run effects. See `bgcube.fit.joint`.

`check_effect_width` is the one rule for those widths (``night_sigma``,
``run_sigma``), applied by the spec itself, by ``make_models`` and its
configuration file and by the ``bgcube make-models`` options.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .joint_basis import bspline_basis, clamped_knots, difference_penalty
from .joint_solver import JointDesign

__all__ = ["JointModelSpec", "check_effect_width", "EFFECT_WIDTH_RANGE", "EFFECT_WIDTH_TEXT"]

#: Smallest and largest positive width of the night and run effects (natural log of the
#: rate). The fit uses a width through its prior's precision ``1 / width**2``: below
#: 0.001 (0.1 % in rate, less than the counts of any run can tell) it holds an effect
#: at 0 as 0 does, and overflows for tiny widths; above 10 (a factor e**10 in rate, no
#: prior at all) the effects are unbounded and the Newton steps of the fit overflow.
EFFECT_WIDTH_RANGE = (1e-3, 10.0)
#: What a width must be, as the messages say it.
EFFECT_WIDTH_TEXT = (
    f"0 (none) or a number between {EFFECT_WIDTH_RANGE[0]:g} and {EFFECT_WIDTH_RANGE[1]:g}"
)


def check_effect_width(value) -> float:
    """A width of the night or run effects (``night_sigma``, ``run_sigma``), checked.

    Parameters
    ----------
    value : float
        The width, natural log of the rate.

    Returns
    -------
    value : float

    Raises
    ------
    ValueError
        Not a number, not finite, negative, or positive outside
        `EFFECT_WIDTH_RANGE`; the message is ``expected EFFECT_WIDTH_TEXT,
        got VALUE``.
    """
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    width = float(value) if number else math.nan
    lo, hi = EFFECT_WIDTH_RANGE
    if not (width == 0 or lo <= width <= hi):
        got = f"{float(value):g}" if number else repr(value)
        raise ValueError(f"expected {EFFECT_WIDTH_TEXT}, got {got}")
    return width


@dataclass(frozen=True)
class JointModelSpec:
    """The family of the joint model: bases, their ranges, penalties, fit binning.

    Energies in TeV, angles in deg. The defaults are those validated on the
    H.E.S.S. DL3 DR1 (see the validation page of the documentation).

    The energy bins of the fit (and of the written cubes) have edges at
    1 TeV x 10^(k x ``energy_step_dex``), from the edge at or below
    ``energy_range[0]`` to the one at or above ``energy_range[1]``. Only the
    bins of a run above its safe threshold are fitted, so a threshold on
    an edge loses no data: the default step, 0.03 dex, puts every H.E.S.S.
    DR1 threshold on an edge (they lie on that grid), and the model is
    fitted right from each run's threshold instead of extrapolated below
    its first whole bin.
    """

    energy_range: tuple = (0.1, 100.0)
    energy_step_dex: float = 0.03
    fov_half_width: float = 2.5
    fit_pixel: float = 0.2
    output_pixel: float = 0.1
    n_energy_basis: int = 12
    n_spatial_energy_basis: int = 6
    n_radial_basis: int = 8
    radial_max: float = 3.6
    gradients: bool = True
    penalty_energy: float = 1.0
    penalty_conditions: float = 1e4
    penalty_spatial_energy: float = 1.0
    penalty_radial: float = 1.0
    night_gap_hours: float = 6.0
    night_sigma: float = 0.1
    run_sigma: float = 0.07
    run_tail: float = 0.5

    def __post_init__(self):
        for name in ("night_sigma", "run_sigma"):
            try:
                check_effect_width(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

    # ------------------------------------------------------------------
    def energy_edges(self) -> np.ndarray:
        """Energy bin edges of the fit and of the written cubes, TeV (see the class notes)."""
        lo, hi = (math.log10(float(e)) for e in self.energy_range)
        step = float(self.energy_step_dex)
        if not (step > 0 and hi > lo):
            raise ValueError(
                f"energy_step_dex must be > 0 and energy_range increasing, got {step} and "
                f"{tuple(self.energy_range)}"
            )
        first = math.floor(lo / step + 1e-6)
        last = math.ceil(hi / step - 1e-6)
        return 10 ** (step * np.arange(first, last + 1, dtype=np.float64))

    def _log_energy_bounds(self) -> tuple[float, float]:
        """log10 of the first and last energy edges: the range of the energy bases."""
        edges = self.energy_edges()
        return math.log10(edges[0]), math.log10(edges[-1])

    def fov_edges(self, pixel: float) -> np.ndarray:
        """DETX = DETY edges over +-fov_half_width with this pixel size, deg."""
        n = int(round(2 * self.fov_half_width / pixel))
        return np.linspace(-self.fov_half_width, self.fov_half_width, n + 1)

    def energy_basis(self, log_energy) -> np.ndarray:
        lo, hi = self._log_energy_bounds()
        return bspline_basis(log_energy, clamped_knots(lo, hi, self.n_energy_basis))

    def spatial_energy_basis(self, log_energy) -> np.ndarray:
        lo, hi = self._log_energy_bounds()
        return bspline_basis(log_energy, clamped_knots(lo, hi, self.n_spatial_energy_basis))

    def spatial_basis(self, detx, dety) -> np.ndarray:
        """Field-of-view basis at points, shape ``(n_points, J)``: radial splines, gradients."""
        detx, dety = np.ravel(detx), np.ravel(dety)
        offset = np.hypot(detx, dety)
        radial = bspline_basis(offset, clamped_knots(0.0, self.radial_max, self.n_radial_basis))
        parts = [radial[:, 1:]]  # the first spline is the only one non-zero at the centre
        if self.gradients:
            parts += [detx[:, None], dety[:, None]]
        return np.concatenate(parts, axis=1)

    @property
    def n_radial_terms(self) -> int:
        return self.n_radial_basis - 1

    def design(self, log_energy, detx, dety, n_features: int, n_spatial_features: int):
        """The `~bgcube.fit.joint_solver.JointDesign` (NumPy) on these bin centres."""
        be = self.energy_basis(log_energy)
        bs = self.spatial_energy_basis(log_energy)
        g = self.spatial_basis(detx, dety)
        k, j = be.shape[1], g.shape[1]
        lam = np.full(n_features, self.penalty_conditions)
        lam[0] = self.penalty_energy
        penalty_a = np.kron(np.diag(lam), difference_penalty(k))
        penalty_s = (
            np.kron(difference_penalty(bs.shape[1]), np.eye(j)) * self.penalty_spatial_energy
        )
        radial = np.zeros((j, j))
        nr = self.n_radial_terms
        radial[:nr, :nr] = difference_penalty(nr) * self.penalty_radial
        penalty_s = penalty_s + np.kron(np.eye(bs.shape[1]), radial)
        penalty_s = np.kron(np.eye(n_spatial_features), penalty_s)
        return JointDesign(be, bs, g, penalty_a, penalty_s)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["energy_range"] = [float(e) for e in self.energy_range]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JointModelSpec:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("run_sigma", 0.0)  # written before the model had run effects
        if "energy_range" in kwargs:
            kwargs["energy_range"] = tuple(kwargs["energy_range"])
        return cls(**kwargs)

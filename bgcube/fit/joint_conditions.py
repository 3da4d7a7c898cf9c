"""Run conditions of the joint background model: obs-index columns as scaled features.

A `Condition` names an observation-index column (``ZEN_PNT``, ``MUONEFF``,
...), how it is transformed (cosine of an angle, logarithm, as it is) and
to which polynomial degree the model uses it; `Condition.fitted_to` fixes
its centre and scale on the runs of a fit and refuses a column that is
missing, not finite or constant. `run_features` turns conditions and an
observation table (or one row) into the feature matrix of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import astropy.units as u
import numpy as np

from ..binning import EFFECTIVE_AREA_COLUMN
from ..errors import ConditionError

__all__ = [
    "Condition",
    "parse_condition",
    "run_features",
    "DEFAULT_CONDITIONS",
    "DEFAULT_SPATIAL_CONDITIONS",
    "TRANSFORMS",
]


#: How a condition column is turned into a number before scaling.
TRANSFORMS = ("cos", "log", "linear")


@dataclass(frozen=True)
class Condition:
    """One run condition of the joint model: an obs-index column, transformed and scaled.

    The model uses ``((transform(value) - centre) / scale) ** k`` for
    ``k = 1 .. degree``.

    Parameters
    ----------
    column : str
        Observation-index column (e.g. ``'ZEN_PNT'``, ``'MUONEFF'``).
    transform : {'cos', 'log', 'linear'}
        ``cos``: cosine of an angle in deg; ``log``: natural logarithm.
    degree : int
        Polynomial degree, 1 to 3.
    centre, scale : float
        Set when the model is fitted (median and a fixed step of the
        transformed values of the fitted runs; NaN before).
    """

    column: str
    transform: str = "linear"
    degree: int = 1
    centre: float = math.nan
    scale: float = math.nan

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(
                f"condition transform must be one of {TRANSFORMS}, got {self.transform!r}"
            )
        if not 1 <= int(self.degree) <= 3:
            raise ValueError(f"condition degree must be 1, 2 or 3, got {self.degree}")

    @property
    def name(self) -> str:
        """Text form, ``COLUMN:transform:degree`` (`parse_condition` reads it)."""
        return f"{self.column}:{self.transform}:{self.degree}"

    def raw(self, table) -> np.ndarray:
        """The transformed column of an observation table (or one row), as floats.

        Raises
        ------
        ConditionError
            Column missing or values not finite (log of a value <= 0 included).
        """
        names = list(table.colnames) if hasattr(table, "colnames") else list(table.keys())
        column = self.column
        if column not in names:
            if column == "ZEN_PNT" and "ALT_PNT" in names:
                values = 90.0 - _floats(table, "ALT_PNT", u.deg)
            else:
                raise ConditionError(
                    f"condition column {column!r} is not in the observation index "
                    f"(columns: {', '.join(names)})"
                )
        else:
            values = _floats(table, column, u.deg if self.transform == "cos" else None)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.transform == "cos":
                values = np.cos(np.radians(values))
            elif self.transform == "log":
                values = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
        if not np.all(np.isfinite(values)):
            bad = int(np.sum(~np.isfinite(values)))
            raise ConditionError(
                f"condition column {column!r} has {bad} value(s) that are missing, not finite"
                + (" or <= 0 (log)" if self.transform == "log" else "")
            )
        return values

    def fitted_to(self, table) -> Condition:
        """This condition with centre and scale set from the runs of ``table``.

        Raises
        ------
        ConditionError
            The column is constant over the runs (nothing to fit).
        """
        values = self.raw(table)
        spread = float(np.max(values) - np.min(values)) if values.size else 0.0
        if not spread > 1e-9 * max(1.0, float(np.max(np.abs(values)))):
            raise ConditionError(
                f"condition column {self.column!r} has the same value for all "
                f"{values.size} fitted runs: its dependence cannot be fitted "
                f"(leave it out of the conditions)"
            )
        return replace(self, centre=float(np.median(values)), scale=spread / 4.0)

    def features(self, table) -> np.ndarray:
        """Scaled powers, shape ``(n_runs, degree)``."""
        x = (self.raw(table) - self.centre) / self.scale
        return np.stack([np.atleast_1d(x) ** k for k in range(1, int(self.degree) + 1)], axis=-1)


def _floats(table, column, unit=None) -> np.ndarray:
    value = table[column]
    if isinstance(value, u.Quantity):
        value = (
            value.to_value(unit)
            if unit is not None and value.unit.is_equivalent(unit)
            else value.value
        )
    elif hasattr(value, "unit") and value.unit is not None and unit is not None:
        try:
            value = u.Quantity(value).to_value(unit)
        except u.UnitConversionError:
            value = np.asarray(value)
    value = np.ma.filled(np.ma.asarray(value, dtype=np.float64), np.nan)
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def parse_condition(text: str) -> Condition:
    """A `Condition` from ``COLUMN[:transform[:degree]]``, e.g. ``'MUONEFF:log:2'``.

    Without a transform, ``ZEN_PNT``/``ALT_PNT`` get ``cos``, ``MUONEFF``,
    ``DEADC`` and ``AEFF_1TEV`` get ``log``, others ``linear``; the degree
    defaults to 1.
    """
    parts = [p.strip() for p in str(text).split(":")]
    if not parts[0] or len(parts) > 3:
        raise ValueError(f"a condition is COLUMN[:transform[:degree]], got {text!r}")
    column = parts[0]
    default = {
        "ZEN_PNT": "cos",
        "ALT_PNT": "cos",
        "MUONEFF": "log",
        "DEADC": "log",
        EFFECTIVE_AREA_COLUMN: "log",
    }
    transform = parts[1] if len(parts) > 1 and parts[1] else default.get(column.upper(), "linear")
    try:
        degree = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        raise ValueError(f"the degree of condition {text!r} is not an integer") from None
    return Condition(column, transform, degree)


#: Conditions of the spectral terms: cos(zenith) and log(MUONEFF), each to 2nd order, and
#: the log of the run's effective area at 1 TeV (a build adds that column from the IRFs).
DEFAULT_CONDITIONS = (
    Condition("ZEN_PNT", "cos", 2),
    Condition("MUONEFF", "log", 2),
    Condition(EFFECTIVE_AREA_COLUMN, "log", 1),
)
#: Conditions of the field-of-view shape: cos(zenith), linear.
DEFAULT_SPATIAL_CONDITIONS = (Condition("ZEN_PNT", "cos", 1),)


def run_features(conditions, table) -> np.ndarray:
    """Feature matrix ``(n_runs, 1 + sum of degrees)``: a column of ones, then each condition."""
    parts = [np.atleast_2d(c.features(table)) for c in conditions]
    if parts:
        n = parts[0].shape[0]
    else:
        is_table = (
            hasattr(table, "colnames") and hasattr(table, "columns") and not hasattr(table, "index")
        )
        n = len(table) if is_table else 1
    return np.concatenate([np.ones((n, 1)), *parts], axis=1)

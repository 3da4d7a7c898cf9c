"""Checks of what enters a `bgcube.FOVCubeBackgroundModel`: agreeing cubes, kept fractions.

The model's constructor and ``compute_rate`` refuse cubes on different
binnings, or passed as the wrong argument (a time cube as ``counts_cube``),
before any arithmetic on them; ``add_observation_time`` refuses kept
fractions outside [0, 1].
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

from .backend import to_numpy
from .errors import BinningError, DataUnitError, ObservationError

__all__ = ["check_model_cubes", "check_kept_fraction"]

#: Each argument of the model: the scheme of its cube and what its data are.
SLOTS = {
    "counts_cube": ("bg_counts_cube", u.dimensionless_unscaled, "counts (dimensionless)"),
    "livetime_cube": ("bg_livetime_cube", u.s, "an observation time (s)"),
    "background_cube": ("bg_cube", u.Unit("1 / (MeV s sr)"), "a rate (1/(MeV s sr))"),
}

#: Relative to an axis's span, edges closer than this are the same (float32 files).
EDGE_TOLERANCE = 1e-6


def _fits(unit, expected) -> bool:
    """Whether ``unit`` is of ``expected``'s kind (a count unit ``ct`` may multiply it)."""
    return unit.is_equivalent(expected) or (unit / u.ct).is_equivalent(expected)


def _slot_of(cube) -> str | None:
    """The argument ``cube`` belongs in, by its scheme, else by its unit (None if none)."""
    for name, (scheme, unit, _) in SLOTS.items():
        if cube.scheme == scheme or (cube.scheme is None and _fits(cube.unit, unit)):
            return name
    return None


def _check_kind(name, cube) -> None:
    scheme, unit, what = SLOTS[name]
    if cube.scheme == scheme or (cube.scheme is None and _fits(cube.unit, unit)):
        return
    found = f"scheme {cube.scheme!r}, unit '{cube.unit}'"
    other = _slot_of(cube)
    if other is not None:
        raise DataUnitError(
            f"{name} holds a cube for {other} ({found}): are the cubes swapped? pass each "
            f"cube as the argument of its scheme ({name} needs {what}, scheme {scheme!r})"
        )
    raise DataUnitError(f"{name} needs {what}, scheme {scheme!r} or None; got a cube with {found}")


def _axis_differs(a, b) -> bool:
    ea, eb = a.edges_canonical, b.edges_canonical
    if ea.shape != eb.shape:
        return True
    span = float(max(abs(ea[-1] - ea[0]), abs(eb[-1] - eb[0])))
    return bool(np.max(np.abs(ea - eb)) > EDGE_TOLERANCE * span)


def _describe(axis) -> str:
    edges = axis.edges_quantity
    return f"{axis.nbin} bins, {edges[0].value:.6g} to {edges[-1].value:.6g} {edges.unit}"


def check_model_cubes(cubes: dict) -> None:
    """Refuse cubes given as the wrong argument, or not on one binning.

    Parameters
    ----------
    cubes : dict
        ``{'counts_cube': cube or None, 'livetime_cube': ..., 'background_cube': ...}``.

    Raises
    ------
    bgcube.errors.DataUnitError
        A cube whose scheme or unit is that of another argument (the cubes
        are swapped) or of none.
    bgcube.errors.BinningError
        Two cubes with different DETX, DETY or energy edges; the message
        names both cubes and the axis.
    """
    present = [(name, cube) for name, cube in cubes.items() if cube is not None]
    for name, cube in present:
        _check_kind(name, cube)
    if not present:
        return
    first_name, first = present[0]
    for name, cube in present[1:]:
        for label, attr in (
            ("DETX", "detx_axis"),
            ("DETY", "dety_axis"),
            ("energy", "energy_axis"),
        ):
            a, b = getattr(cube, attr), getattr(first, attr)
            if _axis_differs(a, b):
                raise BinningError(
                    f"{name} differs from {first_name} in its {label} binning ({_describe(a)}, "
                    f"against {_describe(b)}); the cubes of a model share one binning"
                )


def check_kept_fraction(fraction, xp) -> None:
    """Refuse kept fractions outside [0, 1] or NaN.

    Parameters
    ----------
    fraction : array
        Fractions on the backend of namespace ``xp`` (one value read back).
    xp : module
        Its namespace.

    Raises
    ------
    bgcube.errors.ObservationError
        A value below 0, above 1 or NaN; the message gives the range found.
    """
    if bool(xp.all((fraction >= 0) & (fraction <= 1))):
        return
    values = np.asarray(to_numpy(fraction), dtype=np.float64)
    nan = np.isnan(values)
    finite = values[~nan]
    detail = [f"{int(np.sum(nan))} NaN"] if nan.any() else []
    if finite.size and not np.all((finite >= 0) & (finite <= 1)):
        detail.append(f"values from {float(finite.min()):.6g} to {float(finite.max()):.6g}")
    raise ObservationError(
        "kept_fraction must lie in [0, 1] (the fraction of each pixel outside exclusion "
        f"regions), got {' and '.join(detail)}"
    )

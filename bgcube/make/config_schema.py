"""The type and range of every `~bgcube.make.config.BuildConfig` field, checked when read.

A build configuration read from YAML (``make-models --config FILE``) may
hold any value for any key; `check_config_values` checks each against the
field's kind (a number in a range, an integer, true or false, a text, one
of a few choices, a list of numbers, conditions, run ids) before the build
starts, and names the file and the key of the first value that does not
fit, e.g. ``config file 'c.yaml', key 'fit_glat_min': expected a number between
0 and 90, got 'abc'``. Values come back as the build takes them (edges as tuples of
floats, a single run id as a list).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import FileFormatError

__all__ = ["check_config_values", "config_error"]


class _Expected(ValueError):
    """What a value should have been (the text after ``expected``)."""


class _Invalid(_Expected):
    """A value of the right kind that does not work: the whole message."""


def config_error(filename, key: str, text: str) -> FileFormatError:
    """The error for a bad value of ``key``: ``config file 'F', key 'K': TEXT``.

    Parameters
    ----------
    filename : str or path, optional
        The configuration file (None: a mapping given in Python).
    key : str
        The field.
    text : str
        What is wrong.

    Returns
    -------
    error : `~bgcube.errors.FileFormatError`
    """
    where = f"config file {str(filename)!r}, key {key!r}" if filename else f"key {key!r}"
    error = FileFormatError(f"{where}: {text}")
    error.filename = None if filename is None else str(filename)
    return error


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(check: Callable) -> Callable:
    def checked(value):
        return None if value is None else check(value)

    return checked


def _number(lo=None, hi=None) -> Callable:
    bounds = (
        f"between {lo:g} and {hi:g}"
        if lo is not None and hi is not None
        else (f">= {lo:g}" if lo is not None else "")
    )
    text = f"a number {bounds}".strip()

    def check(value):
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise _Expected(text)
        return float(value)

    return check


def _effect_width(value):
    """A width of the night or run effects (`bgcube.fit.joint_spec.check_effect_width`)."""
    from ..fit.joint_spec import EFFECT_WIDTH_TEXT, check_effect_width

    if not _is_number(value):
        raise _Expected(EFFECT_WIDTH_TEXT)
    try:
        return check_effect_width(value)
    except ValueError:
        raise _Expected(EFFECT_WIDTH_TEXT) from None


def _integer(lo: int) -> Callable:
    def check(value):
        if not _is_number(value) or not float(value).is_integer() or value < lo:
            raise _Expected(f"an integer >= {lo}")
        return int(value)

    return check


def _boolean(value):
    if not isinstance(value, bool):
        raise _Expected("true or false")
    return value


def _text(value):
    if not isinstance(value, str):
        raise _Expected("a text")
    return value


def _choice(*choices: str) -> Callable:
    def check(value):
        if value not in choices:
            raise _Expected(f"one of {', '.join(repr(c) for c in choices)}")
        return value

    return check


def _smooth(value):
    if isinstance(value, bool):
        return value
    try:
        return _integer(0)(value)
    except _Expected:
        raise _Expected("true, false or a number of smoothing passes >= 0") from None


def _obs_ids(value):
    if isinstance(value, str):
        return value
    values = [value] if _is_number(value) else value
    if not isinstance(values, list) or not all(
        _is_number(v) and float(v).is_integer() for v in values
    ):
        raise _Expected("run ids: a list of integers, or a text '1,2,3' or '@FILE'")
    return [int(v) for v in values]


def _conditions(value):
    from ..fit.joint import parse_condition

    expected = "a list of conditions COLUMN[:cos|log|linear[:degree]] ('none' for none)"
    if isinstance(value, str):
        if value.strip().lower() in ("", "none"):
            return ()
        value = [t.strip() for t in value.split(",") if t.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Expected(expected)
    for text in value:
        try:
            parse_condition(text)
        except ValueError as exc:
            raise _Invalid(f"{text!r}: {exc}") from None
    return tuple(value)


def _edges(which: str) -> Callable:
    def check(value):
        from ..errors import BinningError
        from .config import DEFAULT_AZIMUTH_EDGES, DEFAULT_ZENITH_EDGES
        from .grouping import ObservationGroups

        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise _Expected("a list of numbers (bin edges, deg)")
        edges = tuple(float(v) for v in value)
        zenith, azimuth = (
            (edges, DEFAULT_AZIMUTH_EDGES) if which == "zenith" else (DEFAULT_ZENITH_EDGES, edges)
        )
        try:
            ObservationGroups.from_bins(zenith, azimuth)
        except (BinningError, ValueError) as exc:
            raise _Invalid(str(exc)) from None
        return edges

    return check


@functools.cache
def _schema() -> dict[str, Callable]:
    """Field name -> check (returns the value as the build takes it, or raises _Expected)."""
    from ..array.namespace import BACKENDS
    from ..data.fov import FOV_ALIGNMENTS
    from ..schemes import TIME_CONVENTIONS
    from .output_paths import INPUT_PATH_RULES

    text, flag = _optional(_text), _boolean
    return {
        "indir": text,
        "test": flag,
        "obs_ids": _optional(_obs_ids),
        "exclude_obs_ids": _optional(_obs_ids),
        "select": text,
        "model": _choice("joint", "groups"),
        "conditions": _optional(_conditions),
        "spatial_conditions": _optional(_conditions),
        "fit_glat_min": _optional(_number(0, 90)),
        "night_sigma": _optional(_effect_width),
        "run_sigma": _optional(_effect_width),
        "method": _choice("default", "michi"),
        "alignment": _choice(*FOV_ALIGNMENTS),
        "model_type": _choice("3d", "2d"),
        "zenith_edges": _edges("zenith"),
        "azimuth_edges": _edges("azimuth"),
        "min_observations": _integer(1),
        "exclusion": _optional(_text),
        "time_convention": _choice(*TIME_CONVENTIONS),
        "smooth": _smooth,
        "per_observation": _optional(_choice("none", "group", "interpolate")),
        "fit_norm": flag,
        "efficiency_column": text,
        "outdir": text,
        "input_paths": _choice(*INPUT_PATH_RULES),
        "extrapolate": flag,
        "overwrite": flag,
        "backend": _choice(*BACKENDS),
        "fail_fast": flag,
        "scheduler": text,
        "workers": _optional(_integer(1)),
        "resume": flag,
        "keep_checkpoint": flag,
        "progress": _optional(_boolean),
    }


def check_config_values(values: dict[str, Any], filename=None) -> dict[str, Any]:
    """Check each value of a build configuration against its field's kind.

    Parameters
    ----------
    values : dict
        Field name -> value, as read from the file (every name a field).
    filename : str or path, optional
        The file, for messages.

    Returns
    -------
    values : dict
        The same keys, each value as the build takes it.

    Raises
    ------
    FileFormatError
        A value of the wrong type or out of range, naming the file and the
        key, what was expected and what was found.
    """
    schema = _schema()
    checked = {}
    for name, value in values.items():
        check = schema.get(name)
        if check is None:  # a field added without a check: taken as it is
            checked[name] = value
            continue
        try:
            checked[name] = check(value)
        except _Expected as exc:
            shown = str(Path(filename)) if filename is not None else None
            text = str(exc) if isinstance(exc, _Invalid) else f"expected {exc}, got {value!r}"
            raise config_error(shown, name, text) from None
    return checked

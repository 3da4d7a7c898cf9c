"""Filling a cube from one event list: the work behind `FOVCube.fill_events`.

On NumPy with numba, float32 and float64 columns go to the compiled fill
as they are stored (`~bgcube.event_columns.stored_event_columns`): a
column in a smaller unit (energy in GeV) is binned against its axis moved
to that unit, one in another unit, in big-endian byte order (as astropy
reads FITS data) or strided (a table's row layout) is converted inside the
fill's threads; the counts are those of converting first, and no copy of
a column is made. Other columns come from
`~bgcube.event_columns.iter_event_columns` (no copy where a column is
already in TeV/deg as float32 or float64, conversion in cache-sized slices
otherwise) and go to the array core's `~bgcube.array.fill_histogram`,
which on NumPy with numba also counts the events with a NaN or infinite
coordinate in the same pass. Nothing is
converted to NumPy on the way: weights and columns of the cube's backend
stay on its device, and the only value read back is the number of dropped
events (one scalar per event list) that the warning needs.
"""

from __future__ import annotations

import os
import warnings

import astropy.units as u
import numpy as np

from . import array as _array
from .errors import DroppedEventsWarning, EventDataError
from .event_columns import (
    CONVERT_CHUNK,
    _describe_events,
    iter_event_columns,
    stored_event_columns,
)

__all__ = ["checked_event_lists", "fill_event_list"]

#: What ``fill_events`` takes, for its error messages.
EXPECTED_EVENTS = (
    "fill_events expects event lists: astropy Tables (or dicts of arrays) with ENERGY, DETX "
    "and DETY columns carrying units, or a list of them"
)


def _is_one_event_list(obj) -> bool:
    """Whether ``fill_events`` got one event list rather than a sequence of them."""
    if hasattr(obj, "colnames") or hasattr(obj, "table") or hasattr(obj, "columns"):
        return True
    if hasattr(obj, "keys") and hasattr(obj, "__getitem__"):  # a mapping of columns
        return True
    # a chunk (energy, dety, detx) of arrays, as iter_event_chunks yields
    return (
        isinstance(obj, tuple)
        and len(obj) >= 3
        and all(hasattr(a, "shape") and not hasattr(a, "colnames") for a in obj)
    )


def _is_bare_array(obj) -> bool:
    """An array (not a table, mapping or structured array): no event list."""
    return (
        hasattr(obj, "shape")
        and not hasattr(obj, "colnames")
        and not hasattr(obj, "keys")
        and not getattr(getattr(obj, "dtype", None), "names", None)
    )


def _describe(obj) -> str:
    if hasattr(obj, "shape"):
        return f"a {type(obj).__module__}.{type(obj).__name__} of shape {tuple(obj.shape)}"
    text = repr(obj)
    return f"the {type(obj).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _not_event_list(obj) -> EventDataError:
    if isinstance(obj, str | bytes | os.PathLike):
        return EventDataError(
            f"{EXPECTED_EVENTS}; got the file name {os.fsdecode(obj)!r}: read it first, e.g. "
            "bgcube.EventList.read(filename)"
        )
    return EventDataError(f"{EXPECTED_EVENTS}; got {'None' if obj is None else _describe(obj)}")


def _check_event_list(events) -> None:
    if (
        events is None
        or _is_bare_array(events)
        or isinstance(events, int | float | str | bytes | os.PathLike)
    ):
        raise _not_event_list(events)


def _weight_list(weights, event_lists):
    """``weights`` as a list of one array per event list (None stays None)."""
    if weights is None:
        return None
    one_array = _is_bare_array(weights) and len(getattr(weights, "shape", ())) <= 1
    if one_array or isinstance(weights, str | bytes) or not hasattr(weights, "__iter__"):
        raise EventDataError(
            f"weights must be a list with one weight array per event list, got {_describe(weights)}"
            "; for a single event list pass weights=[w]"
        )
    weights = list(weights)
    if hasattr(event_lists, "__len__") and len(weights) != len(event_lists):
        raise _weight_count_error(len(weights), len(event_lists))
    return weights


def _weight_count_error(n_weights, n_lists) -> EventDataError:
    """Weights not one array per event list (``n_lists``: a count, or 'more')."""
    return EventDataError(
        f"weights must hold one weight array per event list: got {n_weights} weight "
        f"arrays for {n_lists} event lists"
    )


def checked_event_lists(event_lists, weights=None):
    """``(index, events, weights)`` of each event list given to ``fill_events``, checked.

    A generator of event lists is read once, each checked as it comes.

    Raises
    ------
    bgcube.errors.EventDataError
        None, a file name, a bare array or a number where event lists are
        expected; weights that are not one array per event list.
    """
    if _is_one_event_list(event_lists):
        event_lists = [event_lists]
    if (
        event_lists is None
        or isinstance(event_lists, str | bytes | os.PathLike)
        or _is_bare_array(event_lists)
        or not hasattr(event_lists, "__iter__")
    ):
        raise _not_event_list(event_lists)
    weights = _weight_list(weights, event_lists)
    sized = hasattr(event_lists, "__len__")  # counts matched by _weight_list
    if sized:  # a sequence: all checked before any is filled
        for events in event_lists:
            _check_event_list(events)
    n = 0
    for n, events in enumerate(event_lists, start=1):
        if not sized:  # a generator: each checked as it comes
            _check_event_list(events)
            if weights is not None and n > len(weights):
                raise _weight_count_error(len(weights), "more")
        yield n - 1, events, None if weights is None else weights[n - 1]
    if weights is not None and n < len(weights):
        raise _weight_count_error(len(weights), n)


def _finite_weights(weights, xp, events, index):
    """``weights`` with NaN and infinite ones set to 0 (not counted), reported by a warning."""
    if weights is None or not xp.isdtype(weights.dtype, "real floating"):
        return weights
    finite = xp.isfinite(weights)
    n_bad = int(xp.sum(xp.astype(~finite, xp.int64)))  # one value read back
    if not n_bad:
        return weights
    warnings.warn(
        DroppedEventsWarning(
            f"{_describe_events(events, index)}: dropped {n_bad} of {int(weights.shape[0])} "
            "events with a NaN or infinite weight (not counted in any bin)",
            n_dropped=n_bad,
            n_events=int(weights.shape[0]),
        ),
        stacklevel=5,
    )
    return xp.where(finite, weights, xp.zeros_like(weights))


def _weights_on(weights, xp, device):
    """Weights as an array of the cube's backend, on its device (never through NumPy)."""
    if weights is None:
        return None
    if isinstance(weights, u.Quantity):
        weights = weights.to_value(u.dimensionless_unscaled)
    if isinstance(weights, np.ndarray) and _array.backend_name(xp) == "numpy":
        return weights
    return xp.asarray(weights, device=device)


def _fused_fill(cube, events, weights, method):
    """Counts, dropped and events of one NumPy fill with conversion in the kernel, or None.

    None where the compiled fill does not apply (no numba, another method,
    a small fill while numba is not loaded, a column neither float32 nor
    float64).
    """
    if method not in ("auto", "numba"):
        return None
    columns, factors = stored_event_columns(events)
    if columns is None:
        return None
    n = int(columns[0].shape[0])
    if method == "auto" and _array.default_fill_method(np, n) != "numba":
        return None
    if weights is not None and tuple(weights.shape) != (n,):
        return None  # the array core's check names the shapes
    from .array import _numba_fill

    flat, n_bad = _numba_fill.fill(
        *columns, cube.binnings, weights, count_nonfinite=True, factors=factors
    )
    return flat.reshape(tuple(b.nbin for b in cube.binnings)), n_bad, n


def _fill_columns(cube, events, weights, method, on_numpy):
    """Counts, dropped and events of one fill from `iter_event_columns`, slice by slice."""
    xp, dev = cube.xp, cube.device
    # on NumPy the fill reads the columns in place; other backends take a
    # column in one transfer, so it is converted whole
    chunk = CONVERT_CHUNK if on_numpy else None
    total, n_bad, n_events = None, 0, 0
    for columns in iter_event_columns(events, dtype=None, chunk_size=chunk):
        energy, dety, detx = (
            c if on_numpy and isinstance(c, np.ndarray) else xp.asarray(c, device=dev)
            for c in columns
        )
        n = int(energy.shape[0])
        w = None if weights is None else weights[n_events : n_events + n]
        counts, bad = _array.fill_histogram(
            energy, dety, detx, cube.binnings, w, method=method, count_nonfinite=True
        )
        total = counts if total is None else total + counts
        n_bad = n_bad + bad
        n_events += n
    return total, n_bad, n_events


def fill_event_list(cube, events, weights=None, *, index=None, method="auto"):
    """Add the counts of one event list to ``cube.data`` (float64 accumulation).

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        The cube to fill (its binning, backend and device are used).
    events : Table, QTable, EventList, mapping, tuple or object with a ``table``
        See `~bgcube.event_columns.iter_event_columns`.
    weights : array, optional
        One weight per event, any backend.
    index : int, optional
        Position of this list among those filled (named in the warning).
    method : str
        Fill method (see `bgcube.array.fill_histogram`).

    Warns
    -----
    bgcube.errors.DroppedEventsWarning
        If events have a NaN or infinite ENERGY, DETX or DETY, or weight
        (one warning for each).
    """
    xp, dev = cube.xp, cube.device
    on_numpy = _array.backend_name(xp) == "numpy"
    w_all = _finite_weights(_weights_on(weights, xp, dev), xp, events, index)
    fused = _fused_fill(cube, events, w_all, method) if on_numpy else None
    if fused is not None:
        total, n_bad, n_events = fused
    else:
        total, n_bad, n_events = _fill_columns(cube, events, w_all, method, on_numpy)
    n_bad = int(n_bad)  # the one value read back from the device
    if n_bad:
        warnings.warn(
            DroppedEventsWarning(
                f"{_describe_events(events, index)}: dropped {n_bad} of {n_events} events with a "
                "NaN or infinite ENERGY, DETX or DETY (not counted in any bin)",
                n_dropped=n_bad,
                n_events=n_events,
            ),
            stacklevel=4,
        )
    if total is None:
        return cube
    data = cube._accumulator()
    cube.data = data + xp.astype(total, data.dtype)
    return cube

"""Axis order of a stored data array: find it on read, apply it on write.

A BKG_3D data cell holds a 3D array whose axis order varies between
producers (see `bgcube.io.formats.LAYOUTS`). The stored shape, which
astropy takes from TDIM, is matched against the dialect's layouts in order
(`bgcube.io.formats.DIALECT_LAYOUTS`); for GADF files that order
reproduces Gammapy 2.x, so both read the same values from the same file.

A cell without TDIM is a flat vector whose shape says nothing: it is
reshaped with the dialect's default layout and an
`~bgcube.errors.AmbiguousLayoutWarning` says so (whatever the bin counts:
a flat vector cannot tell DETX from DETY even when their counts differ).
The same warning is emitted when the TDIM shape fits layouts that disagree
on which axis is energy (energy and a spatial axis with equal bin counts).
Equal DETX and DETY bin counts with TDIM are not warned about: there the
dialect's convention decides, as in Gammapy. Files written by bgcube name
their layout (keyword BGLAYOUT) and are never guessed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import AmbiguousLayoutWarning, FileFormatError
from .formats import CUBE_AXES, DEFAULT_FLAT_LAYOUT, DIALECT_LAYOUTS, LAYOUTS

__all__ = ["stored_shape", "orient", "to_layout"]


def stored_shape(layout: str, nbins: dict) -> tuple[int, int, int]:
    """Shape of an array stored in ``layout`` for bin counts ``nbins`` (axis name -> n)."""
    return tuple(nbins[name] for name in LAYOUTS[layout])


def _check_layout_name(layout, filename, hdu):
    if layout not in LAYOUTS:
        raise FileFormatError(
            f"unknown layout {layout!r}; known layouts: {sorted(LAYOUTS)}",
            filename=filename,
            hdu=hdu,
        )


def _permutation(layout: str, nbins: dict) -> tuple:
    # Where each cube axis longer than one bin sits among the stored axes
    # longer than one bin: equal tuples mean equal results for any data.
    long_axes = [a for a in LAYOUTS[layout] if nbins[a] > 1]
    return tuple(long_axes.index(a) for a in CUBE_AXES if nbins[a] > 1)


def _to_cube_order(stored: np.ndarray, layout: str) -> np.ndarray:
    names = LAYOUTS[layout]
    array = np.transpose(stored, [names.index(a) for a in CUBE_AXES])
    # Native byte order and C order: what every backend accepts.
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def orient(stored, nbins: dict, dialect: str, *, layout=None, column="", filename=None, hdu=None):
    """Return the stored array as ``[ENERGY, DETY, DETX]`` and the layout used.

    Parameters
    ----------
    stored : numpy.ndarray
        The array of one table cell: 3D when the column has TDIM, flat otherwise.
    nbins : dict
        Bin counts ``{'ENERGY': nE, 'DETY': ny, 'DETX': nx}`` of the axes.
    dialect : {'gadf', 'fovcube'}
        Which producer convention decides between layouts that fit.
    layout : str, optional
        Force a layout from `bgcube.io.formats.LAYOUTS` (no guessing, no warning).
    column, filename, hdu : optional
        For messages.

    Returns
    -------
    data : numpy.ndarray
        Shape ``(nE, ny, nx)``, native byte order.
    layout : str
        Name of the layout that was applied.

    Raises
    ------
    FileFormatError
        If the array's size or shape fits no layout.
    """
    stored = np.asarray(stored)
    expected = (nbins["ENERGY"], nbins["DETY"], nbins["DETX"])
    if stored.size != math.prod(expected):
        raise FileFormatError(
            f"data column {column!r} holds {stored.size} values with shape {stored.shape}, "
            f"but the axes need nE * nDETY * nDETX = {' * '.join(map(str, expected))} "
            f"= {math.prod(expected)}",
            filename=filename,
            hdu=hdu,
        )
    if layout is not None:
        _check_layout_name(layout, filename, hdu)
        return _to_cube_order(stored.reshape(stored_shape(layout, nbins)), layout), layout

    if stored.ndim != 3:
        layout = DEFAULT_FLAT_LAYOUT[dialect]
        if len({_permutation(name, nbins) for name in LAYOUTS}) > 1:
            warnings.warn(
                f"file {filename!r}, HDU {hdu!r}: data column {column!r} has no TDIM, so "
                f"its axis order is unknown; assumed {layout!r} "
                f"({', '.join(LAYOUTS[layout])}, slowest first). Pass layout=... to choose.",
                AmbiguousLayoutWarning,
                stacklevel=3,
            )
        return _to_cube_order(stored.reshape(stored_shape(layout, nbins)), layout), layout

    fits = [name for name in DIALECT_LAYOUTS[dialect] if stored_shape(name, nbins) == stored.shape]
    if not fits:
        accepted = {name: stored_shape(name, nbins) for name in DIALECT_LAYOUTS[dialect]}
        raise FileFormatError(
            f"data column {column!r} has shape {stored.shape} (TDIM reversed), which fits no "
            f"known axis order for axes ENERGY={nbins['ENERGY']}, DETY={nbins['DETY']}, "
            f"DETX={nbins['DETX']}; accepted shapes: {accepted}",
            filename=filename,
            hdu=hdu,
        )
    layout = fits[0]
    # Layouts that fit but put the energy axis in different places give
    # different cubes (a DETX/DETY swap alone is settled by the dialect).
    energy_places = {_permutation(name, nbins)[0] for name in fits} if nbins["ENERGY"] > 1 else ()
    if len(energy_places) > 1:
        warnings.warn(
            f"file {filename!r}, HDU {hdu!r}: data column {column!r} has shape "
            f"{stored.shape}, which fits several axis orders ({', '.join(fits)}); "
            f"assumed {layout!r} as Gammapy does. Pass layout=... to choose.",
            AmbiguousLayoutWarning,
            stacklevel=3,
        )
    return _to_cube_order(stored, layout), layout


def to_layout(data: np.ndarray, layout: str) -> np.ndarray:
    """A ``[ENERGY, DETY, DETX]`` array in ``layout``'s axis order for storage.

    A view (transposed, not copied): its C order is the stored order, and the
    writer copies it once, into the file's bytes (big-endian), instead of
    copying it here first.
    """
    names = LAYOUTS[layout]
    return np.transpose(data, [CUBE_AXES.index(a) for a in names])

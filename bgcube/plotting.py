"""Plots of cubes and background models (matplotlib, imported inside the functions).

* `plot_image`: the image of one energy bin;
* `plot_spectrum`: the spectrum of one DETX/DETY bin, log-log;
* `radial_profile`: mean over rings of offset from the pointing;
* `peek`: one figure with images, spectra and radial profiles.

Labels come from the cube's naming scheme (`bgcube.schemes`): a background
cube says "Background rate [1 / (MeV s sr)]", a counts cube "Counts", a
time cube "Observation time [s]". Every plot function returns its Axes
(`peek` its Figure). Only the requested energy image or spectrum is copied
from the data's backend to the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

from .backend import to_numpy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from ._types import ArrayLike, CubeLike, QuantityLike

__all__ = [
    "plot_image",
    "plot_spectrum",
    "radial_profile",
    "peek",
    "log_axis_errors",
    "empty_bin_cmap",
    "EMPTY_BIN_COLOURS",
    "LEGEND_OUTSIDE",
]


#: Colours for empty bins, in order of preference (`empty_bin_cmap`): greys, then vivid colours.
EMPTY_BIN_COLOURS = ("0.8", "0.6", "0.45", "magenta", "lime")
#: Least RGB distance (0 to sqrt(3)) from every colour of a map for an empty-bin colour.
_FAR_FROM_MAP = 0.25

#: Gap between an image and its colour bar, and the bar's width, as fractions of the image width.
COLORBAR_PAD, COLORBAR_WIDTH = 0.04, 0.05

#: Where legends go: outside the Axes, to the right, so that they never hide data.
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}


def log_axis_errors(values: ArrayLike, errors: ArrayLike, floor: float = 0.1) -> np.ndarray:
    """Error bars for a log axis: ``[lower, upper]`` with the lower end kept above 0.

    A lower end at or below zero cannot be drawn on a log axis (matplotlib
    draws a line down to the bottom of the axes); it is clipped to
    ``floor`` times the value (one decade below it by default).

    Parameters
    ----------
    values, errors : array
        Positive values and their (symmetric) errors.
    floor : float
        Smallest lower end, as a fraction of the value.

    Returns
    -------
    yerr : numpy.ndarray
        Shape ``(2, n)``, for `~matplotlib.axes.Axes.errorbar`.
    """
    values = np.asarray(values, dtype=float)
    errors = np.asarray(errors, dtype=float)
    lower = np.minimum(errors, values * (1.0 - floor))
    return np.vstack([lower, errors])


def empty_bin_cmap(cmap: str | Colormap | None = None) -> Colormap:
    """The colour map ``cmap`` with empty (masked) bins drawn in a colour it does not use.

    Masked bins get a map's 'bad' colour, transparent by default: white shows
    through, as ``afmhot`` draws its hottest values (``RdBu_r`` a ratio of 1).
    It becomes the first of `EMPTY_BIN_COLOURS` far from every colour of the
    map (light grey for ``afmhot``, darker grey for ``RdBu_r``, magenta for
    ``gray``); the map's colours and colour bar are unchanged; a bad colour
    set by the caller is kept. Every image plot of bgcube draws with it.

    Parameters
    ----------
    cmap : str or `~matplotlib.colors.Colormap`, optional
        A colour map or its name (default: matplotlib's default map).

    Returns
    -------
    cmap : `~matplotlib.colors.Colormap`
        A copy, with the same name.
    """
    import matplotlib as mpl
    from matplotlib.colors import to_rgb

    cmap = mpl.colormaps.get_cmap(cmap)
    if cmap.get_bad()[3] > 0:  # chosen by the caller
        return cmap
    colours = cmap(np.linspace(0.0, 1.0, cmap.N))[:, :3]
    distance = [np.min(np.linalg.norm(colours - to_rgb(c), axis=1)) for c in EMPTY_BIN_COLOURS]
    far = [c for c, d in zip(EMPTY_BIN_COLOURS, distance, strict=True) if d >= _FAR_FROM_MAP]
    bad = far[0] if far else EMPTY_BIN_COLOURS[int(np.argmax(distance))]
    return cmap.with_extremes(bad=bad)


def _label(name, unit) -> str:
    """``'name [unit]'``, or just ``name`` for a dimensionless quantity."""
    unit = u.Unit(unit)
    if unit == u.dimensionless_unscaled:
        return name
    return f"{name} [{unit.to_string()}]"


def _data_label(cube) -> str:
    return _label(cube.scheme_dict["data_plot_name"], cube.unit)


def _axes(ax):
    """``ax``, or the Axes of a new figure (as the original: one figure per call)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(layout="constrained").add_subplot()


def _bin_range(lo, hi, unit) -> str:
    return f"[{lo:.3g}, {hi:.3g}) {unit}"


def plot_image(
    cube: CubeLike, energy: QuantityLike, ax: Axes | None = None, style_kwargs: dict | None = None
) -> Axes:
    """Plot the image of the energy bin holding ``energy``.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        The cube.
    energy : `~astropy.units.Quantity`
        An energy inside the cube's energy range.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw (default: a new figure, as the original).
    style_kwargs : dict, optional
        Passed to `~matplotlib.axes.Axes.imshow` (e.g. ``norm=LogNorm()``,
        ``cmap``); defaults: ``cmap='afmhot'``, ``interpolation='nearest'``.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The image is ``ax.images[-1]``, drawn with ``origin='lower'`` over
        ``cube.image_extent``, with a colour bar labelled with the data name
        and unit next to it. Zero and non-finite bins are masked, drawn in
        a colour the map does not use (`empty_bin_cmap`); an image with no
        other bin gets a note instead of a colour bar.

    Raises
    ------
    ValueError
        If ``energy`` is not one energy, or is outside the cube.
    """
    energy = u.Quantity(energy)
    if energy.size != 1:
        raise ValueError(
            f"energy must be exactly 1 value (the image of one energy bin is drawn), got "
            f"{energy.size} values: {energy}; call plot_image once per energy"
        )
    index = cube.find_energy_bin(energy.reshape(()))
    ax = _axes(ax)
    lo, hi = cube.energy_axis.bin(index)
    image = to_numpy(cube.data[index, ...])
    # empty (zero) and non-finite bins are masked: the map's 'bad' colour, not one of its own
    masked = np.ma.masked_where(~np.isfinite(image) | (image == 0), image)
    extent = cube.image_extent
    style = {"cmap": "afmhot", "interpolation": "nearest", **(style_kwargs or {})}
    style["cmap"] = empty_bin_cmap(style["cmap"])
    artist = ax.imshow(masked, origin="lower", extent=extent.value, **style)
    names = cube.scheme_dict
    ax.set_title(f"{names['energy_plot_name']} = {_bin_range(lo.value, hi.value, lo.unit)}")
    ax.set_xlabel(_label(names["coordx_plot_name"], extent.unit))
    ax.set_ylabel(_label(names["coordy_plot_name"], extent.unit))
    if masked.count() == 0:  # nothing to colour: say so instead of a meaningless colour bar
        ax.text(
            0.5,
            0.5,
            "no data in this energy bin\n(all bins zero)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        return ax
    colorbar = _colorbar(artist, ax)
    colorbar.set_label(_data_label(cube))
    return ax


def _colorbar(artist, ax):
    """A colour bar right next to the image of ``ax``, as tall as it.

    Under constrained layout (`peek`, a new figure) it is an inset of ``ax``,
    so it follows the image where the layout shrinks the Axes to keep its
    aspect (a bar taken from the grid cell would stay at the cell's edge).
    Elsewhere it takes its room from ``ax`` (``mpl_toolkits.axes_grid1``).
    """
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    figure = ax.figure
    if isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine):
        cax = ax.inset_axes([1.0 + COLORBAR_PAD, 0.0, COLORBAR_WIDTH, 1.0])
        return figure.colorbar(artist, cax=cax)
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    cax = make_axes_locatable(ax).append_axes(
        "right", size=f"{100 * COLORBAR_WIDTH:g}%", pad=f"{100 * COLORBAR_PAD:g}%"
    )
    return figure.colorbar(artist, cax=cax)


def plot_spectrum(
    cube: CubeLike, coord: QuantityLike, ax: Axes | None = None, style_kwargs: dict | None = None
) -> Axes:
    """Plot the spectrum of the DETX/DETY bin holding ``coord``, log-log.

    The values of the bin are drawn at the logarithmic centres of the
    energy bins. The y axis is logarithmic when any value is positive
    (else linear, since a log axis cannot show it); on a log axis, bins
    with zero (or negative) values are left as gaps.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        The cube.
    coord : `~astropy.coordinates.Angle`
        ``(detx, dety)`` inside the cube.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw (default: a new figure, as the original).
    style_kwargs : dict, optional
        Passed to `~matplotlib.axes.Axes.plot` (e.g. ``color``, ``label``).

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The spectrum is ``ax.lines[-1]``.

    Raises
    ------
    ValueError
        If ``coord`` is not one ``(x, y)`` pair, or is outside the cube.
    """
    coord = Angle(coord)
    ix, iy = cube.find_coord_bin(coord)
    ax = _axes(ax)
    x_lo, x_hi, y_lo, y_hi = cube.find_coord_bin_edges(coord)
    values = to_numpy(cube.data[:, iy, ix])
    centers = cube.energy_axis.centers
    log_y = bool(np.any(values > 0)) or ax.get_yscale() == "log"
    # a log axis cannot show zeros: leave gaps instead of lines dropping off the axis
    shown = np.where(values > 0, values, np.nan) if log_y else values
    ax.plot(centers.value, shown, **(style_kwargs or {}))
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    names = cube.scheme_dict
    unit = x_lo.unit
    ax.set_title(
        f"{names['coordx_plot_name']} = {_bin_range(x_lo.value, x_hi.value, unit)}, "
        f"{names['coordy_plot_name']} = {_bin_range(y_lo.value, y_hi.value, unit)}"
    )
    ax.set_xlabel(_label(names["energy_plot_name"], centers.unit))
    ax.set_ylabel(_data_label(cube))
    return ax


def radial_profile(cube: CubeLike, energy: QuantityLike) -> tuple[u.Quantity, u.Quantity]:
    """Mean of the image of one energy bin over rings of offset from the pointing.

    The offset of a pixel is the distance of its centre from DETX = DETY = 0,
    ``sqrt(detx**2 + dety**2)`` (flat approximation). Rings are as wide as
    the narrowest pixel and start at 0.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        The cube.
    energy : `~astropy.units.Quantity`
        An energy inside the cube; its bin is used.

    Returns
    -------
    offset : `~astropy.coordinates.Angle`
        Ring centres.
    profile : `~astropy.units.Quantity`
        Mean value over the pixels whose centre falls in each ring (NaN for
        rings holding no pixel centre), in the cube's unit.
    """
    index = cube.find_energy_bin(u.Quantity(energy))
    image = to_numpy(cube.data[index, ...]).astype(np.float64)
    x, y = cube.image_bin_centers
    unit = x.unit
    xx, yy = np.meshgrid(x.to_value(unit), y.to_value(unit))
    offset = np.hypot(xx, yy)
    width = min(
        np.min(cube.detx_axis.widths.to_value(unit)), np.min(cube.dety_axis.widths.to_value(unit))
    )
    n_rings = int(np.floor(offset.max() / width)) + 1
    ring = np.minimum((offset / width).astype(np.int64), n_rings - 1).ravel()
    sums = np.bincount(ring, weights=image.ravel(), minlength=n_rings)
    counts = np.bincount(ring, minlength=n_rings)
    profile = np.full(n_rings, np.nan)
    np.divide(sums, counts, out=profile, where=counts > 0)
    centers = (np.arange(n_rings) + 0.5) * width
    return Angle(centers, unit), u.Quantity(profile, cube.unit)


def _peek_cube(obj):
    """The cube to show for a cube or a model, and a figure title."""
    if not hasattr(obj, "background_cube"):
        return obj, f"{obj.scheme_dict['data_plot_name']} cube"
    for name in ("background_cube", "counts_cube", "livetime_cube"):
        cube = getattr(obj, name)
        if cube is not None and bool(cube.xp.any(cube.data != 0)):
            label = cube.scheme_dict["data_plot_name"]
            return cube, f"Background model ({obj.time_convention}): {label.lower()}"
    raise ValueError("the model has no cube with non-zero data to show")


def peek(
    cube: CubeLike, n_energies: int = 3, n_positions: int = 3, figsize: tuple = (15, 9)
) -> Figure:
    """One figure: images at a few energies, spectra at a few positions, radial profiles.

    Parameters
    ----------
    cube : `~bgcube.FOVCube` or `~bgcube.FOVCubeBackgroundModel`
        A model shows its background cube (else its counts, else its time
        cube, the first with non-zero data).
    n_energies : int
        Number of energy bins, spread evenly over the bins that hold data,
        with an image and a radial profile each.
    n_positions : int
        Number of spectra, at DETY = 0 and DETX from 0 towards the edge.
    figsize : tuple
        Figure size in inches.

    Returns
    -------
    figure : `~matplotlib.figure.Figure`
        Top row: images; bottom row: spectra and radial profiles.

    Raises
    ------
    ValueError
        If a model has no cube with non-zero data.
    """
    import matplotlib.pyplot as plt

    cube, title = _peek_cube(cube)
    # spread the images over the energy bins that hold data (all bins if none do)
    filled = np.nonzero(to_numpy(cube.xp.any(cube.data != 0, axis=(1, 2))))[0]
    first, last = (
        (int(filled[0]), int(filled[-1])) if filled.size else (0, cube.energy_axis.nbin - 1)
    )
    n_bins = last - first + 1
    n_energies = min(n_energies, n_bins)
    # the centres of n bins spread evenly over that range: bins (k + 1/2) * n_bins / n
    indices = first + ((np.arange(n_energies) + 0.5) * n_bins / n_energies).astype(int)
    energies = cube.energy_bin_centers[indices]
    figure = plt.figure(figsize=figsize, layout="constrained")
    grid = figure.add_gridspec(2, max(n_energies, 2))
    for i, energy in enumerate(energies):
        plot_image(cube, energy, ax=figure.add_subplot(grid[0, i]))

    half = max(n_energies, 2) // 2
    ax_spec = figure.add_subplot(grid[1, :half])
    x_lo, x_hi, y_lo, y_hi = cube.image_extent.to_value(u.deg)
    x0 = 0.0 if x_lo <= 0.0 < x_hi else 0.5 * (x_lo + x_hi)
    y0 = 0.0 if y_lo <= 0.0 < y_hi else 0.5 * (y_lo + y_hi)
    for x in x0 + (x_hi - x0) * np.arange(n_positions) / n_positions:
        coord = Angle([x, y0], u.deg)
        plot_spectrum(cube, coord, ax=ax_spec, style_kwargs={"label": f"({x:.2g}, {y0:.2g}) deg"})
    ax_spec.set_title("Spectra")
    ax_spec.legend(
        title=f"({cube.scheme_dict['coordx_plot_name']}, {cube.scheme_dict['coordy_plot_name']})",
        **LEGEND_OUTSIDE,
    )

    ax_prof = figure.add_subplot(grid[1, half:])
    any_positive = False
    for energy in energies:
        offset, profile = radial_profile(cube, energy)
        index = cube.find_energy_bin(energy)
        lo, hi = cube.energy_axis.bin(index)
        ax_prof.plot(
            offset.value, profile.value, marker=".", label=_bin_range(lo.value, hi.value, lo.unit)
        )
        any_positive |= bool(np.any(profile.value > 0))
    if any_positive:
        ax_prof.set_yscale("log")
    ax_prof.set_title("Radial profile (mean over rings of offset)")
    ax_prof.set_xlabel(_label("Offset", offset.unit))
    ax_prof.set_ylabel(_data_label(cube))
    ax_prof.legend(title=cube.scheme_dict["energy_plot_name"], **LEGEND_OUTSIDE)
    figure.suptitle(title)
    return figure

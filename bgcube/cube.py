"""FOVCube: a cube over (energy, DETY, DETX) with units, on any array backend."""

from __future__ import annotations

import copy as _copy
import functools
from typing import TYPE_CHECKING, Any, Self

import astropy.units as u
import numpy as np

from . import array as _array
from .array.namespace import compiled
from .axes import CubeAxis
from .backend import from_numpy, namespace_of, to_backend_array, to_numpy
from .cube_evaluation import CubeEvaluation
from .cube_io import CubeIO
from .cube_vocabulary import OriginalVocabulary
from .errors import BinningError
from .fill_events import checked_event_lists, fill_event_list
from .schemes import scheme_dict
from .services import service

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ._types import Array, ArrayLike, BackendLike, QuantityLike
    from .array.binning import Binning

__all__ = ["FOVCube"]


def _is_backend_array(value) -> bool:
    """An array of some backend (JAX, CuPy, array_api_strict, ...), not host data to convert."""
    return hasattr(value, "__array_namespace__") or hasattr(value, "__dlpack__")


@functools.lru_cache(maxsize=64)
def _parse_unit(text: str) -> u.UnitBase:
    """A unit string parsed once (astropy parses it again on every call)."""
    return u.Unit(text)


#: Physical kind each scheme's data must have (a count unit ``ct`` may multiply it).
_SCHEME_UNITS = {"bg_cube": u.Unit("1 / (MeV s sr)"), "bg_livetime_cube": u.s}


def _check_scheme_unit(scheme, unit) -> None:
    """Refuse data units that do not fit the scheme (a background rate in m, a time in TeV)."""
    expected = _SCHEME_UNITS.get(scheme)
    if expected is None or unit.is_equivalent(expected) or (unit / u.ct).is_equivalent(expected):
        return
    from .errors import DataUnitError

    raise DataUnitError(
        f"a {scheme!r} cube needs data in a unit convertible to '{expected}', got '{unit}'"
    )


class FOVCube(OriginalVocabulary, CubeIO, CubeEvaluation):
    """Field-of-view cube: data over (energy, DETY, DETX) bins.

    The data live on an array backend (NumPy, JAX, CuPy, array_api_strict)
    and are indexed ``[energy, dety, detx]`` as in the original Gammapy
    FOVCube; axes and unit live on the host as astropy objects. Where the
    original's ``data`` was a Quantity, ``data`` here is the backend array
    (unit in ``unit``); `quantity` (and `background` for background cubes,
    the original's name) give the Quantity, e.g.
    ``cube.background[energy_bin, det_bin[1], det_bin[0]]``.

    Parameters
    ----------
    coordx_edges : `~astropy.coordinates.Angle`
        DETX bin edges.
    coordy_edges : `~astropy.coordinates.Angle`
        DETY bin edges.
    energy_edges : `~astropy.units.Quantity`
        Reconstructed-energy bin edges.
    data : `~astropy.units.Quantity` or array, optional
        Cube values, shape ``(n_energy, n_dety, n_detx)``. A Quantity sets
        the unit; a backend array keeps its backend and device. Default:
        zeros (float64) on ``backend``.
    scheme : {'bg_cube', 'bg_counts_cube', 'bg_livetime_cube', None}, optional
        Naming scheme for FITS files and plot labels.
    unit : str or `~astropy.units.Unit`, optional
        Data unit when ``data`` is not a Quantity (default: the scheme's:
        1/(MeV s sr), dimensionless counts, or s).
    backend : str or module, optional
        Backend for default or host data (default NumPy).
    meta : dict, optional
        Extra header keywords carried along (e.g. FOVALIGN, time convention).

    Examples
    --------
    >>> import astropy.units as u
    >>> import numpy as np
    >>> cube = FOVCube(np.linspace(-3, 3, 7) * u.deg, np.linspace(-3, 3, 7) * u.deg,
    ...                np.geomspace(0.1, 100, 4) * u.TeV, scheme='bg_counts_cube')
    >>> cube.data.shape
    (3, 6, 6)
    """

    def __init__(
        self,
        coordx_edges: QuantityLike,
        coordy_edges: QuantityLike,
        energy_edges: QuantityLike,
        data: ArrayLike | None = None,
        scheme: str | None = None,
        *,
        unit: str | u.UnitBase | None = None,
        backend: BackendLike = None,
        meta: dict | None = None,
    ) -> None:
        self._scheme_dict = scheme_dict(scheme)
        self.scheme = scheme or None
        names = self._scheme_dict
        self.detx_axis = CubeAxis(coordx_edges, names["coordx_fits_name"])
        self.dety_axis = CubeAxis(coordy_edges, names["coordy_fits_name"])
        self.energy_axis = CubeAxis(energy_edges, "ENERGY")
        if not self.detx_axis.canonical_unit.is_equivalent(u.deg):
            raise BinningError(f"coordx_edges must be angles, got unit {self.detx_axis.unit}")
        if not self.dety_axis.canonical_unit.is_equivalent(u.deg):
            raise BinningError(f"coordy_edges must be angles, got unit {self.dety_axis.unit}")
        if not self.energy_axis.canonical_unit.is_equivalent(u.TeV):
            raise BinningError(f"energy_edges must be energies, got unit {self.energy_axis.unit}")
        self.meta = dict(meta or {})

        if isinstance(data, u.Quantity):
            if unit is not None:
                data = data.to(unit)
            unit = data.unit
            data = data.value
        if unit is None:
            unit = names["default_unit"]
        self.unit = _parse_unit(unit) if isinstance(unit, str) else u.Unit(unit)
        _check_scheme_unit(self.scheme, self.unit)
        if data is None:
            xp = namespace_of(backend)
            self._data = xp.zeros(self.shape, dtype=xp.float64)
        else:
            self._data = self._checked_data(data, namespace_of(backend), None)

    # ------------------------------------------------------------------
    # the data: checked on assignment
    @property
    def data(self) -> Array:
        """Cube values, indexed ``[energy, dety, detx]``, on the cube's backend (unit in `unit`).

        Assigning is checked, as the original's ``cube.data = quantity``
        idiom needs: a `~astropy.units.Quantity` is converted to `unit`; a
        NumPy array (or nested list) is put on the cube's backend and
        device; another backend's array is kept as it is (no copy). The
        shape must be `shape`, ``(n_energy, n_dety, n_detx)``.

        Raises
        ------
        bgcube.errors.DataUnitError
            A Quantity whose unit is not convertible to `unit`.
        ValueError
            Data of another shape.
        """
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        self._data = self._checked_data(value)

    def _checked_data(self, value, xp=None, device=None):
        """``value`` as the cube's data: in `unit`, on a backend, of shape `shape`.

        ``xp``/``device``: where host data go (default: the current data's
        backend and device). Cheap for a backend array of the right shape:
        no copy, no trip through the host.
        """
        if isinstance(value, u.Quantity):
            try:
                value = value.to_value(self.unit)  # a view if the unit is the same
            except u.UnitConversionError:
                from .errors import DataUnitError

                raise DataUnitError(
                    f"cannot set the data of a cube in '{self.unit}' to a Quantity in "
                    f"'{value.unit}': the units are not convertible"
                ) from None
        if isinstance(value, np.ndarray) or not _is_backend_array(value):
            if xp is None:
                current = self._data
                if isinstance(current, np.ndarray):
                    xp = None  # NumPy cube: the array itself
                else:
                    xp, device = _array.array_namespace(current), _array.array_device(current)
            value = np.asarray(value) if xp is None else from_numpy(value, xp, device=device)
        shape = tuple(getattr(value, "shape", ()))
        if shape != self.shape:
            raise ValueError(
                f"data shape {shape} does not match the axes (energy, dety, detx) = {self.shape}"
            )
        return value

    # ------------------------------------------------------------------
    # construction helpers
    def copy(self, data: ArrayLike | None = None) -> Self:
        """A deep copy, optionally with new ``data`` (checked as assigning `data` is)."""
        if data is None:
            return self._with_data(self.xp.asarray(self.data, copy=True))
        new = self._with_data(self.data)
        new.data = data  # unit and shape checked; host data go on this cube's backend
        return new

    def _with_data(self, data: Array) -> Self:
        """A shallow copy (own ``meta``) holding ``data`` as it is, unchecked."""
        new = _copy.copy(self)
        new.meta = dict(self.meta)
        new._data = data
        return new

    def to_backend(self, backend: BackendLike, device: Any = None) -> Self:
        """A copy of this cube with its data on another backend.

        Parameters
        ----------
        backend : {'numpy', 'array_api_strict', 'jax', 'cupy'} or module
            Target backend.
        device : object, optional
            Target device on that backend.

        Returns
        -------
        cube : FOVCube
            Its data moved by DLPack where the two libraries share a memory
            space (no trip through the host), else copied through the host.
        """
        return self._with_data(to_backend_array(self.data, backend, device=device))

    def __repr__(self):
        return (
            f"FOVCube(scheme={self.scheme!r}, shape (energy, dety, detx)={self.shape}, "
            f"{self.axes_summary()}, unit='{self.unit}', sum={float(self.xp.sum(self.data)):.6g}, "
            f"backend={self.backend!r})"
        )

    def axes_summary(self) -> str:
        """The axis ranges in one line, e.g. ``'energy 0.1-100 TeV, DETX -3-3 deg, DETY -3-3 deg'``."""
        e, x, y = self.energy_edges, self.coordx_edges, self.coordy_edges
        return (
            f"energy {e[0].value:.4g} to {e[-1].value:.4g} {e.unit}, "
            f"DETX {x[0].value:.4g} to {x[-1].value:.4g} {x.unit}, "
            f"DETY {y[0].value:.4g} to {y[-1].value:.4g} {y.unit}"
        )

    # ------------------------------------------------------------------
    # backend and data
    @property
    def xp(self) -> Any:
        """Array API namespace of the data."""
        return _array.array_namespace(self.data)

    @property
    def backend(self) -> str:
        """Backend name of the data ('numpy', 'jax', ...)."""
        return _array.backend_name(self.xp)

    @property
    def device(self) -> Any:
        """Device holding the data."""
        return _array.array_device(self.data)

    @property
    def quantity(self) -> u.Quantity:
        """The data as an astropy Quantity on the host (a copy for non-NumPy backends)."""
        return u.Quantity(to_numpy(self.data), self.unit, copy=False)

    @property
    def background(self) -> u.Quantity:
        """The background rate as a Quantity on the host (background cubes only).

        The original FOVCube's name for the data of a background cube
        (scheme ``'bg_cube'``), indexed ``[energy, dety, detx]``; the same as
        `quantity`.
        """
        if self.scheme != "bg_cube":
            raise AttributeError(
                f"'background' is the data of a background cube (scheme 'bg_cube'); this "
                f"cube has scheme {self.scheme!r}: use .quantity"
            )
        return self.quantity

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_energy, n_dety, n_detx)``."""
        return (self.energy_axis.nbin, self.dety_axis.nbin, self.detx_axis.nbin)

    @property
    def scheme_dict(self) -> dict:
        """Naming scheme of this cube (FITS names, plot labels)."""
        return dict(self._scheme_dict)

    @property
    def binnings(self) -> tuple[Binning, Binning, Binning]:
        """Core binnings ``(energy, dety, detx)``."""
        return (self.energy_axis.binning, self.dety_axis.binning, self.detx_axis.binning)

    def _edges_on_backend(self):
        xp, dev = self.xp, self.device
        return tuple(
            xp.asarray(a.edges_canonical, dtype=xp.float64, device=dev)
            for a in (self.energy_axis, self.dety_axis, self.detx_axis)
        )

    # ------------------------------------------------------------------
    # volumes and integrals
    def solid_angle(self, exact: bool = False) -> u.Quantity:
        """Solid angle of each (DETY, DETX) pixel, shape ``(ny, nx)``, in sr.

        ``exact=False`` is the flat ``dx * dy`` of the original; ``exact=True``
        the true solid angle (see `bgcube.array.solid_angle`).
        """
        _, ey, ex = self._edges_on_backend()
        return u.Quantity(to_numpy(_array.solid_angle(ey, ex, exact=exact)), u.sr)

    def bin_volume_array(self, exact: bool = False) -> Array:
        """Bin volumes ``dE * dOmega`` on the data's backend, float64, in TeV sr."""
        return compiled(_array.bin_volume, self.xp, exact=bool(exact))(*self._edges_on_backend())

    @property
    def bin_volume(self) -> u.Quantity:
        """Per-bin volume ``dE * dOmega`` (flat solid angle), in TeV sr."""
        return u.Quantity(to_numpy(self.bin_volume_array()), u.TeV * u.sr)

    @property
    def integral(self) -> u.Quantity:
        """Sum of data times bin volume (data unit times TeV sr)."""
        total = self.xp.sum(self.data * self.bin_volume_array())
        return u.Quantity(float(total), self.unit * u.TeV * u.sr)

    @property
    def integral_images(self) -> u.Quantity:
        """Integral of each energy image over solid angle (data unit times sr)."""
        _, ey, ex = self._edges_on_backend()
        area = _array.solid_angle(ey, ex)
        per_image = self.xp.sum(self.data * area, axis=(1, 2))
        return u.Quantity(to_numpy(per_image), self.unit * u.sr)

    def make_spectrum(self, coord: QuantityLike) -> u.Quantity:
        """Data of the (DETX, DETY) bin holding ``coord = (x, y)``, one value per energy bin."""
        from astropy.coordinates import Angle

        ix, iy = self.find_coord_bin(Angle(coord).flatten())
        return self.quantity[:, iy, ix]

    # ------------------------------------------------------------------
    # filling
    def fill_events(
        self, event_lists: Any, weights: ArrayLike | None = None, *, method: str = "auto"
    ) -> Self:
        """Add the counts of event lists to the data.

        Events are binned with half-open bins ``[lo, hi)`` on every axis;
        events outside the cube or with NaN coordinates are not counted.
        Events with a NaN or infinite energy or coordinate are counted once
        per event list and reported by a `~bgcube.errors.DroppedEventsWarning`.

        Parameters
        ----------
        event_lists : list
            Event tables (`~astropy.table.Table` or ``QTable`` with ``ENERGY``,
            ``DETX``, ``DETY`` columns carrying units), objects with such a
            ``table``, bgcube ``EventList``, mappings of those names to
            arrays (plain arrays taken in TeV and deg) or tuples
            ``(energy, dety, detx)`` in TeV, deg, deg as yielded by
            `~bgcube.data.chunks.iter_event_chunks`. A single one is
            accepted too. float32 and float64 columns are filled without a
            copy: on NumPy with numba, one in another unit (energy in GeV)
            or big-endian (as read from FITS) is converted inside the
            compiled fill, to the values converting it first gives; other
            columns are converted in slices.
            Arrays of the cube's backend (e.g. JAX) go to the fill as they are.
        weights : list of array, optional
            One weight array per event list, as long as it (any backend; not
            sent through the host); ``weights=[w]`` for a single event list.
            Events with a NaN or infinite weight are not counted.
        method : str
            Fill method, see `bgcube.array.fill_histogram`.

        Returns
        -------
        self : FOVCube

        Raises
        ------
        bgcube.errors.EventDataError
            If ``event_lists`` is not event lists (None, a file name, a bare
            array, ...) or ``weights`` is not one array per event list.

        Warns
        -----
        bgcube.errors.DroppedEventsWarning
            If events have a NaN or infinite ENERGY, DETX, DETY or weight;
            the message says how many and which event list.
        """
        for i, events, w in checked_event_lists(event_lists, weights):
            fill_event_list(self, events, w, index=i, method=method)
        return self

    def _accumulator(self):
        """The data, promoted to float64 if it is a narrower float (e.g. read from a float32 file).

        Counts and times accumulate in 64 bits: a float32 sum stops counting
        at 2**24 and loses fractions of a second beyond 1e7 s.
        """
        xp = self.xp
        dtype = self.data.dtype
        if dtype != xp.float64 and xp.isdtype(dtype, "real floating"):
            self._data = xp.astype(self._data, xp.float64)
        return self._data

    # ------------------------------------------------------------------
    # plots (thin: the drawing is bgcube.plotting, matplotlib imported there)
    def plot_image(
        self, energy: QuantityLike, ax: Axes | None = None, style_kwargs: dict | None = None
    ) -> Axes:
        """Plot the image of the energy bin holding ``energy``.

        The drawing is `bgcube.plotting.plot_image` (matplotlib is imported
        there, on the first plot).

        Parameters
        ----------
        energy : `~astropy.units.Quantity`
            One energy inside the cube's energy range (a scalar or an array
            of one value).
        ax : `~matplotlib.axes.Axes`, optional
            Where to draw (default: a new figure, as the original).
        style_kwargs : dict, optional
            Passed to `~matplotlib.axes.Axes.imshow` (e.g. ``norm=LogNorm()``,
            ``cmap``); defaults: ``cmap='afmhot'``, ``interpolation='nearest'``.

        Returns
        -------
        ax : `~matplotlib.axes.Axes`
            The image is ``ax.images[-1]``, drawn over `image_extent`, with a
            colour bar labelled with the data name and unit; zero and
            non-finite bins are masked.

        Raises
        ------
        ValueError
            If ``energy`` is not one energy, or is outside the cube.
        """
        return service("plot_image")(self, energy, ax=ax, style_kwargs=style_kwargs)

    def plot_spectrum(
        self, coord: QuantityLike, ax: Axes | None = None, style_kwargs: dict | None = None
    ) -> Axes:
        """Plot the spectrum of the DETX/DETY bin holding ``coord``, log-log.

        The drawing is `bgcube.plotting.plot_spectrum`: the bin's values at
        the logarithmic centres of the energy bins, on a log y axis when any
        value is positive (zero bins left as gaps).

        Parameters
        ----------
        coord : `~astropy.coordinates.Angle`
            One position ``(detx, dety)`` inside the cube (angles, e.g.
            ``Angle([0.5, -1], 'deg')``).
        ax : `~matplotlib.axes.Axes`, optional
            Where to draw (default: a new figure, as the original).
        style_kwargs : dict, optional
            Passed to `~matplotlib.axes.Axes.plot` (e.g. ``color``, ``label``).

        Returns
        -------
        ax : `~matplotlib.axes.Axes`
            The spectrum is ``ax.lines[-1]``; x is energy in the cube's
            energy unit, y the data in the cube's unit.

        Raises
        ------
        ValueError
            If ``coord`` is not one ``(x, y)`` pair, or is outside the cube.
        """
        return service("plot_spectrum")(self, coord, ax=ax, style_kwargs=style_kwargs)

    def peek(self, **kwargs: Any) -> Figure:
        """Overview figure (images, spectra, radial profile); see `bgcube.plotting.peek`."""
        return service("peek")(self, **kwargs)

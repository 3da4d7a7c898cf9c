"""FOVCubeBackgroundModel: counts, time and background-rate cubes built together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import astropy.units as u

from . import array as _array
from .array.namespace import compiled
from .backend import from_numpy, to_numpy
from .cube import FOVCube
from .errors import ModelStateError, ObservationError
from .model_checks import check_kept_fraction, check_model_cubes
from .model_io import ModelIO
from .model_observations import ObservationFilling
from .schemes import TIME_CONVENTIONS
from .services import service
from .smoothing import KERNEL, smoothing_method

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._types import ArrayLike, BackendLike, QuantityLike

__all__ = ["FOVCubeBackgroundModel", "TIME_CONVENTIONS"]


#: Unit of the background rate.
RATE_UNIT = u.Unit("1 / (MeV s sr)")


def _backend_of(array):
    """Backend name of an array, or None for lists and other non-arrays."""
    try:
        return _array.backend_name(_array.array_namespace(array))
    except TypeError:
        return None


class FOVCubeBackgroundModel(ObservationFilling, ModelIO):
    """A background model: a counts cube, a time cube and the rate they give.

    Parameters
    ----------
    counts_cube : FOVCube, optional
        Event counts per bin (scheme ``bg_counts_cube``).
    livetime_cube : FOVCube, optional
        Observation time per bin in s (scheme ``bg_livetime_cube``). It holds
        ONTIME or LIVETIME according to ``time_convention``; the original's name
        is kept.
    background_cube : FOVCube, optional
        Background rate in 1/(MeV s sr) (scheme ``bg_cube``).
    time_convention : {'ONTIME', 'LIVETIME'}
        Which observation time the time cube accumulates. Gammapy predicts
        background counts as rate x ONTIME, so ONTIME is the default; the
        original FOVCube used LIVETIME.

    Raises
    ------
    bgcube.errors.BinningError
        If the cubes given do not share one binning (DETX, DETY and energy
        edges); the message names the cubes and the axis.
    bgcube.errors.DataUnitError
        If a cube's scheme or unit is that of another argument (the cubes
        are swapped) or of none.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> model = FOVCubeBackgroundModel.set_cube_binning(
    ...     np.linspace(-2, 2, 9) * u.deg, np.linspace(-2, 2, 9) * u.deg,
    ...     np.geomspace(0.5, 50, 5) * u.TeV)
    >>> model.counts_cube.shape
    (4, 8, 8)
    """

    def __init__(
        self,
        counts_cube: FOVCube | None = None,
        livetime_cube: FOVCube | None = None,
        background_cube: FOVCube | None = None,
        time_convention: str = "ONTIME",
    ) -> None:
        if time_convention not in TIME_CONVENTIONS:
            raise ValueError(
                f"time_convention must be one of {TIME_CONVENTIONS}, got {time_convention!r}"
            )
        check_model_cubes(
            {
                "counts_cube": counts_cube,
                "livetime_cube": livetime_cube,
                "background_cube": background_cube,
            }
        )
        self.counts_cube = counts_cube
        self.livetime_cube = livetime_cube
        self.background_cube = background_cube
        self.time_convention = time_convention

    @classmethod
    def set_cube_binning(
        cls,
        detx_edges: QuantityLike,
        dety_edges: QuantityLike,
        energy_edges: QuantityLike,
        *,
        backend: BackendLike = None,
        time_convention: str = "ONTIME",
    ) -> Self:
        """A model with empty (zero) cubes on the given binning.

        Parameters
        ----------
        detx_edges, dety_edges : `~astropy.coordinates.Angle`
            Field-of-view bin edges.
        energy_edges : `~astropy.units.Quantity`
            Energy bin edges.
        backend : str or module, optional
            Array backend of the cubes (default NumPy).
        time_convention : {'ONTIME', 'LIVETIME'}
            See the class docstring.

        Returns
        -------
        model : FOVCubeBackgroundModel
        """

        def empty(scheme):
            return FOVCube(detx_edges, dety_edges, energy_edges, scheme=scheme, backend=backend)

        return cls(
            counts_cube=empty("bg_counts_cube"),
            livetime_cube=empty("bg_livetime_cube"),
            background_cube=empty("bg_cube"),
            time_convention=time_convention,
        )

    def __repr__(self):
        cube = self.counts_cube or self.background_cube
        if cube is None:
            return f"FOVCubeBackgroundModel(no cubes, time_convention={self.time_convention!r})"

        def total(c, reduce):
            return None if c is None else float(reduce(c.data))

        counts = total(self.counts_cube, lambda d: self.counts_cube.xp.sum(d))
        time = total(self.livetime_cube, lambda d: self.livetime_cube.xp.max(d))
        rate = self.background_cube
        parts = [
            f"shape (energy, dety, detx)={cube.shape}",
            cube.axes_summary(),
            "counts=" + ("-" if counts is None else f"{counts:.6g}"),
            f"time added ({self.time_convention}, largest per bin)="
            + ("-" if time is None else f"{time * float(self.livetime_cube.unit.to(u.s)):.6g} s"),
            "rate=" + _rate_state(rate),
            f"backend={cube.backend!r}",
        ]
        return f"FOVCubeBackgroundModel({', '.join(parts)})"

    def _cubes(self):
        return {
            "counts_cube": self.counts_cube,
            "livetime_cube": self.livetime_cube,
            "background_cube": self.background_cube,
        }

    def _require(self, *names):
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"this model has no {', '.join(missing)}; call set_cube_binning first")

    def to_backend(self, backend: BackendLike, device: Any = None) -> Self:
        """A copy of the model with every cube on another backend."""
        cubes = {
            name: None if cube is None else cube.to_backend(backend, device)
            for name, cube in self._cubes().items()
        }
        return type(self)(**cubes, time_convention=self.time_convention)

    def fill_events(
        self, event_lists: Any, weights: ArrayLike | None = None, *, method: str = "auto"
    ) -> Self:
        """Add the events of ``event_lists`` to the counts cube (see `FOVCube.fill_events`).

        Returns
        -------
        self : FOVCubeBackgroundModel
        """
        self._require("counts_cube")
        self.counts_cube.fill_events(event_lists, weights, method=method)
        return self

    def add_observation_time(
        self, time: QuantityLike, kept_fraction: ArrayLike | None = None
    ) -> Self:
        """Add one observation's time to the time cube.

        Parameters
        ----------
        time : `~astropy.units.Quantity`
            The observation's ONTIME or LIVETIME (as ``time_convention`` says).
        kept_fraction : array, optional
            Fraction of each (DETY, DETX) pixel outside exclusion regions,
            shape ``(ny, nx)`` or ``(nE, ny, nx)``, values in [0, 1]; default
            1 everywhere.

        Returns
        -------
        self : FOVCubeBackgroundModel

        Raises
        ------
        bgcube.errors.ObservationError
            If the time is zero, negative, not finite or not a time (a
            ``ValueError`` subclass); the message gives the value. If
            ``kept_fraction`` has another shape, or values outside [0, 1]
            or NaN.
        """
        self._require("livetime_cube")
        try:
            seconds = float(u.Quantity(time).to_value(u.s))
        except (TypeError, ValueError) as exc:
            raise ObservationError(
                f"observation time must be a time in s, got {time}: {exc}"
            ) from None
        if not (seconds > 0 and seconds < float("inf")):
            raise ObservationError(f"observation time must be finite and > 0 s, got {time}")
        cube = self.livetime_cube
        increment = seconds * float(u.s.to(cube.unit))
        cube._accumulator()  # float64, whatever the dtype it was read with
        if kept_fraction is None:
            cube.data = cube.data + increment
        else:
            xp = cube.xp
            if _backend_of(kept_fraction) != cube.backend:  # e.g. NumPy fractions, JAX cube
                host = to_numpy(kept_fraction) if _backend_of(kept_fraction) else kept_fraction
                kept_fraction = from_numpy(host, xp, device=cube.device)
            shape = tuple(kept_fraction.shape)
            if shape not in (cube.shape[1:], cube.shape):
                raise ObservationError(
                    f"kept_fraction must have shape (ny, nx) = {cube.shape[1:]} or (nE, ny, nx) = "
                    f"{cube.shape} (the time cube's), got {shape}"
                )
            fraction = xp.astype(kept_fraction, xp.float64)
            check_kept_fraction(fraction, xp)
            cube.data = cube.data + increment * fraction
        return self

    def compute_rate(self, exact_solid_angle: bool = False) -> Self:
        """Fill the background cube with ``counts / (time * dE * dOmega)`` in 1/(MeV s sr).

        Bins with zero time get rate 0.

        Parameters
        ----------
        exact_solid_angle : bool
            ``False`` (default): flat ``dx * dy`` pixel solid angle, as the
            original and GADF tools; ``True``: the true solid angle.

        Returns
        -------
        self : FOVCubeBackgroundModel

        Raises
        ------
        bgcube.errors.BinningError, bgcube.errors.DataUnitError
            If the counts and time cubes do not share one binning, or are
            swapped (see the class).
        bgcube.errors.ModelStateError
            If no observation time was added.
        """
        self._require("counts_cube", "livetime_cube")
        counts, times = self.counts_cube, self.livetime_cube
        # either cube may have been reassigned since the model was made
        check_model_cubes({"counts_cube": counts, "livetime_cube": times})
        if not bool(times.xp.any(times.data > 0)):
            raise ModelStateError(
                "the time cube is empty: call add_observation_time(...) for each observation "
                "before compute_rate() (a rate without time would be zero everywhere)"
            )
        time_s = times.data * float(times.unit.to(u.s))
        volume = counts.bin_volume_array(exact_solid_angle)
        rate = compiled(_array.compute_rate, counts.xp)(counts.data, time_s, volume)
        scale = float((u.Unit("1 / (TeV s sr)") * counts.unit).to(RATE_UNIT))
        meta = dict(counts.meta, SOLIDANG="EXACT" if exact_solid_angle else "FLAT")
        self.background_cube = FOVCube(
            counts.detx_axis.edges_quantity,
            counts.dety_axis.edges_quantity,
            counts.energy_edges,
            data=rate * scale,
            scheme="bg_cube",
            unit=RATE_UNIT,
            meta=meta,
        )
        return self

    def smooth(
        self,
        n_passes: int | None = None,
        *,
        method: str = "k5a",
        model: Any = None,
        **kwargs: Any,
    ) -> Self:
        """Smooth the background cube, preserving each image's integral.

        Parameters
        ----------
        n_passes : int, optional
            ``method='k5a'``: number of convolutions; by default 3, 4 or 5
            for >= 1e6, >= 1e5 or fewer total counts in the counts cube, as
            the original. Required for a model without counts cube (read
            from a file holding only the background).
        method : {'k5a', 'fit'}
            'k5a' (default): the original kernel smoothing. 'fit': replace
            the background cube by a rate model fitted to the counts and
            time cubes (Cash statistic, JAX), which are kept; the fitted
            expected counts add up to the observed counts. See
            `bgcube.fit.smooth_by_fit`, which also returns the fit result.
            The first fit of a model and cube shape in a process imports
            JAX and compiles the fit (about 8 s for the flexible model on a
            20x60x60 cube on 2 cores, ``benchmarks/results/fit.md``); later
            fits of that shape take under a second.
        model : None, str or `bgcube.fit.RateModel`
            ``method='fit'``: the model ('flexible', the default, or
            'gaussian', or a model instance).
        **kwargs
            ``method='fit'``: passed to `bgcube.fit.smooth_by_fit` (start
            values, frozen parameters, quadrature, tolerances).

        Returns
        -------
        self : FOVCubeBackgroundModel

        Raises
        ------
        ValueError
            An unknown method, or arguments of the other method.
        bgcube.errors.ModelStateError
            ``method='k5a'`` without ``n_passes`` on a model without counts
            cube, or before `compute_rate`.
        bgcube.fit.FitError
            ``method='fit'`` and the fit did not converge (cube unchanged).
        """
        if method != KERNEL:
            # other methods live above the model (bgcube.fit); it looks them up by name
            smoother = smoothing_method(method)
            if n_passes is not None:
                raise ValueError(f"n_passes belongs to method='k5a', not method={method!r}")
            smoother(self, model, **kwargs)
            return self
        if model is not None or kwargs:
            raise ValueError(
                f"method='k5a' takes only n_passes, got {['model'] * (model is not None) + list(kwargs)}"
            )
        self._require("background_cube")
        cube = self.background_cube
        if n_passes is not None and (int(n_passes) != n_passes or n_passes < 0):
            raise ValueError(f"n_passes must be an integer >= 0, got {n_passes!r}")
        counts = self.counts_cube
        if (
            not bool(cube.xp.any(cube.data != 0))
            and counts is not None
            and bool(counts.xp.any(counts.data != 0))
        ):
            raise ModelStateError(
                "the background cube is empty but the counts cube is not: call compute_rate() "
                "before smooth()"
            )
        if n_passes is None and self.counts_cube is None:
            raise ModelStateError(
                "this model has no counts_cube (e.g. read from a file holding only the background), "
                "so the number of smoothing passes cannot be chosen from its counts: give it, "
                "e.g. smooth(n_passes=3) (by default 3, 4 or 5 passes for >= 1e6, >= 1e5 or "
                "fewer counts)"
            )
        if n_passes is None:
            total = self.counts_cube.xp.sum(self.counts_cube.data)
            n_passes = _array.n_smooth_passes(float(to_numpy(total)))
        _, ey, ex = cube._edges_on_backend()
        xp, exact = cube.xp, cube.meta.get("SOLIDANG") == "EXACT"
        area = compiled(_array.solid_angle, xp, exact=exact)(ey, ex)
        # one compiled program per cube shape and number of passes on JAX
        cube.data = compiled(_array.smooth_images, xp, n_passes=int(n_passes))(
            cube.data, pixel_area=area
        )
        return self

    # ------------------------------------------------------------------
    # plots (thin: the drawing is bgcube.plotting)
    def peek(self, **kwargs: Any) -> Figure:
        """Overview figure of the background cube (else counts, else time cube).

        Images at a few energies, spectra at a few positions and radial
        profiles; see `bgcube.plotting.peek` for the keywords.

        Returns
        -------
        figure : `~matplotlib.figure.Figure`
        """
        return service("peek")(self, **kwargs)


def _rate_state(rate) -> str:
    """How the background cube came to be, for the model's repr."""
    if rate is None:
        return "-"
    if not bool(rate.xp.any(rate.data != 0)):
        return "not computed (all zero)"
    if str(rate.meta.get("SMOOTH", "")).upper() == "FIT":
        model = rate.meta.get("FITMODEL", "a rate model")
        statistic = rate.meta.get("FITSTAT")
        cash = "" if statistic is None else f", Cash statistic {float(statistic):.6g}"
        return f"fitted ({model}{cash})"
    return "computed"

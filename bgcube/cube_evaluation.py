"""Evaluation of `bgcube.FOVCube` at arbitrary positions: thin methods over `bgcube.array.interpolate`.

``evaluate`` and ``evaluate_integral`` take Quantities, convert them to the
axes' canonical units on the cube's backend and call the array core; as a
base of `bgcube.FOVCube`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from . import array as _array
from .backend import from_numpy, to_numpy

if TYPE_CHECKING:
    from ._types import QuantityLike

__all__ = ["CubeEvaluation"]

#: Most (energy piece x position) values ``evaluate_integral`` hands the array
#: core at once: the core's temporaries are arrays of this many float64 values
#: (512 KiB), so that its memory stays bounded whatever the number of
#: positions (and small arrays are faster: they stay in cache).
INTEGRAL_CHUNK = 2**16


def _quiet_floating_point():
    """No NumPy floating-point warnings (NaN, inf, log of E <= 0) inside the array core."""
    return np.errstate(invalid="ignore", divide="ignore", over="ignore")


class CubeEvaluation:
    """``evaluate`` and ``evaluate_integral`` (a mixin)."""

    def _coordinate_array(self, name, value, axis):
        """``value`` in the axis's canonical unit, as a float64 array on the data's backend."""
        q = u.Quantity(value)
        if not q.unit.is_equivalent(axis.canonical_unit):
            raise ValueError(
                f"{name} must be a Quantity convertible to {axis.canonical_unit}, "
                f"got {value!r} (unit {q.unit!r})"
            )
        return from_numpy(
            q.to_value(axis.canonical_unit), self.xp, device=self.device, dtype=np.float64
        )

    def evaluate(
        self,
        *,
        detx: QuantityLike,
        dety: QuantityLike,
        energy: QuantityLike,
        extrapolate: bool = False,
    ) -> u.Quantity:
        """Cube values at arbitrary points, interpolated between bin centres.

        The interpolation is Gammapy 2.x's ``Background3D.evaluate``: linear
        in DETX, DETY and log(energy), on the log of the values (a power law
        in energy between energy nodes); a zero rate stays zero. See
        `bgcube.array.interpolate` for the exact rule at edges and zeros.

        Parameters
        ----------
        detx, dety : `~astropy.units.Quantity`
            Field-of-view coordinates (angles).
        energy : `~astropy.units.Quantity`
            Energies. The three arrays broadcast together.
        extrapolate : bool
            If False (default), points outside ``[first edge, last edge]`` of
            any axis give 0; if True the outermost pieces are extended.

        Returns
        -------
        values : `~astropy.units.Quantity`
            Broadcast shape of the inputs, in the cube's unit (float64, on
            the host). A point with a NaN or infinite coordinate or an
            energy <= 0 gives 0 (NaN with ``extrapolate=True``), without a
            NumPy warning.

        Raises
        ------
        ValueError
            If an input has no unit of the right kind.

        Examples
        --------
        >>> import numpy as np, astropy.units as u
        >>> from bgcube import FOVCube
        >>> cube = FOVCube(np.linspace(-2, 2, 5) * u.deg, np.linspace(-2, 2, 5) * u.deg,
        ...                np.geomspace(1, 100, 3) * u.TeV, data=np.ones((2, 4, 4)),
        ...                scheme='bg_cube')
        >>> cube.evaluate(detx=[0, 0.3] * u.deg, dety=0 * u.deg, energy=5 * u.TeV)
        <Quantity [1., 1.] 1 / (MeV s sr)>
        """
        e = self._coordinate_array("energy", energy, self.energy_axis)
        y = self._coordinate_array("dety", dety, self.dety_axis)
        x = self._coordinate_array("detx", detx, self.detx_axis)
        with _quiet_floating_point():  # NaN, inf, E <= 0: their values are documented
            values = _array.interpolate_cube(
                self.data, self.binnings, e, y, x, extrapolate=extrapolate
            )
        return u.Quantity(to_numpy(values), self.unit, copy=False)

    def evaluate_integral(
        self,
        *,
        detx: QuantityLike,
        dety: QuantityLike,
        energy_min: QuantityLike,
        energy_max: QuantityLike,
        extrapolate: bool = False,
    ) -> u.Quantity:
        """Integral over an energy band of the interpolated cube, at given positions.

        The exact integral along energy of what `evaluate` returns: between
        energy nodes the cube is a power law, integrated analytically (as
        Gammapy's ``integrate_log_log``). Only the part of the band inside
        the energy axis counts unless ``extrapolate`` is True.

        Parameters
        ----------
        detx, dety : `~astropy.units.Quantity`
            Field-of-view coordinates (angles).
        energy_min, energy_max : `~astropy.units.Quantity`
            Band limits (energies); all four arrays broadcast together.
        extrapolate : bool
            See `evaluate`.

        Returns
        -------
        integral : `~astropy.units.Quantity`
            Broadcast shape, in the cube's unit times energy: a rate in
            1/(MeV s sr) gives 1/(s sr). A NaN or infinite position gives
            0; so does a NaN or infinite band limit without extrapolation
            (only the part of a band inside the energy axis counts), while
            with ``extrapolate=True`` a NaN, infinite or non-positive band
            limit gives NaN. No NumPy warning either way.
        """
        e_lo = self._coordinate_array("energy_min", energy_min, self.energy_axis)
        e_hi = self._coordinate_array("energy_max", energy_max, self.energy_axis)
        y = self._coordinate_array("dety", dety, self.dety_axis)
        x = self._coordinate_array("detx", detx, self.detx_axis)
        with _quiet_floating_point():
            values = self._integrate_in_chunks(e_lo, e_hi, y, x, extrapolate)
        per_energy = [
            b
            for b, p in zip(self.unit.bases, self.unit.powers, strict=True)
            if p < 0 and b.physical_type == "energy"
        ]
        unit = self.unit * (per_energy[0] if per_energy else u.TeV)
        canonical = u.Quantity(to_numpy(values), self.unit * self.energy_axis.canonical_unit)
        return canonical.to(unit)

    def _integrate_in_chunks(self, e_lo, e_hi, y, x, extrapolate):
        """`bgcube.array.integrate_energy_log_log` over slices of the positions.

        The core integrates every energy piece at every position at once,
        with temporaries of (energy bins + 1) x positions values; here the
        broadcast positions are flattened and handed over
        `INTEGRAL_CHUNK` / (energy bins + 1) at a time. Each position's
        integral is computed alone (its sum over the pieces included), so
        the values are those of a single call, bit for bit.
        """
        xp = self.xp
        chunk = max(1, INTEGRAL_CHUNK // (self.energy_axis.nbin + 1))
        coords = xp.broadcast_arrays(e_lo, e_hi, y, x)
        shape = tuple(coords[0].shape)
        size = math.prod(shape)
        if size <= chunk:
            return _array.integrate_energy_log_log(
                self.data, self.binnings, e_lo, e_hi, y, x, extrapolate=extrapolate
            )
        flat = [xp.reshape(c, (-1,)) for c in coords]
        parts = [
            _array.integrate_energy_log_log(
                self.data,
                self.binnings,
                *(c[start : start + chunk] for c in flat),
                extrapolate=extrapolate,
            )
            for start in range(0, size, chunk)
        ]
        return xp.reshape(xp.concat(parts), shape)

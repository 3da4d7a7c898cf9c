"""The original Gammapy FOVCube's axis vocabulary, as a base of `bgcube.FOVCube`.

``coordx_edges``, ``coordy_edges``, ``energy_edges``, ``image_extent``,
``find_det_bin`` and the other names the original FOVCube documented, on top
of the cube's named axes (`bgcube.CubeAxis`): ``detx_axis``, ``dety_axis``,
``energy_axis``. `bgcube.FOVCube` inherits them; they are documented there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

if TYPE_CHECKING:
    from astropy.coordinates import Angle

    from ._types import QuantityLike
    from .axes import CubeAxis

__all__ = ["OriginalVocabulary"]


class OriginalVocabulary:
    """Axis properties and bin look-up in the original FOVCube's names (a mixin)."""

    detx_axis: CubeAxis
    dety_axis: CubeAxis
    energy_axis: CubeAxis

    @property
    def coordx_edges(self) -> Angle:
        """DETX bin edges."""
        return self.detx_axis.edges

    @property
    def coordy_edges(self) -> Angle:
        """DETY bin edges."""
        return self.dety_axis.edges

    @property
    def energy_edges(self) -> u.Quantity:
        """Energy bin edges."""
        return self.energy_axis.edges

    @property
    def energy_bin_centers(self) -> u.Quantity:
        """Logarithmic centres of the energy bins."""
        return self.energy_axis.centers

    @property
    def image_extent(self) -> Angle:
        """``(x_lo, x_hi, y_lo, y_hi)`` of the images."""
        from astropy.coordinates import Angle

        x, y = self.coordx_edges, self.coordy_edges.to(self.coordx_edges.unit)
        return Angle(u.Quantity([x[0], x[-1], y[0], y[-1]]))

    @property
    def spectrum_extent(self) -> u.Quantity:
        """``(e_lo, e_hi)`` of the energy axis."""
        return self.energy_axis.bounds

    @property
    def image_bin_centers(self) -> tuple[Angle, Angle]:
        """DETX and DETY bin centres, as two `~astropy.coordinates.Angle` arrays."""
        return self.detx_axis.centers, self.dety_axis.centers

    def find_energy_bin(self, energy: QuantityLike) -> int | np.ndarray:
        """Index of the energy bin holding ``energy`` (scalar or array Quantity).

        Raises
        ------
        ValueError
            If the energy is outside the cube; the message gives the range.
        """
        return self.energy_axis.index(energy)

    def find_coord_bin(self, coord: QuantityLike) -> np.ndarray:
        """Indices ``(ix, iy)`` of the DETX, DETY bin holding ``coord = (x, y)``.

        Parameters
        ----------
        coord : `~astropy.coordinates.Angle`
            One ``(x, y)`` pair, or an array of shape ``(2, ...)``.

        Returns
        -------
        index : numpy.ndarray of int
            ``[ix, iy]``.

        Raises
        ------
        ValueError
            If the position is outside the cube; the message gives the range.
        """
        from astropy.coordinates import Angle

        coord = Angle(coord)
        if coord.shape[:1] != (2,):
            raise ValueError(f"coord must be an (x, y) pair, got shape {coord.shape}")
        return np.array([self.detx_axis.index(coord[0]), self.dety_axis.index(coord[1])])

    def find_det_bin(
        self, det: QuantityLike | None = None, *, coord: QuantityLike | None = None
    ) -> np.ndarray:
        """Indices ``(ix, iy)`` of the DETX, DETY bin holding ``det = (x, y)``.

        The original FOVCube's name and keyword (``find_det_bin(det=...)``);
        the same as `find_coord_bin`.

        Parameters
        ----------
        det : `~astropy.coordinates.Angle`
            One ``(x, y)`` pair, or an array of shape ``(2, ...)``
            (``coord=`` is accepted too).

        Returns
        -------
        index : numpy.ndarray of int
            ``[ix, iy]``: index the data as ``[energy_bin, iy, ix]``.
        """
        if (det is None) == (coord is None):
            raise TypeError("find_det_bin takes one position: det=(x, y) (or coord=)")
        return self.find_coord_bin(det if det is not None else coord)

    def find_coord_bin_edges(self, coord: QuantityLike) -> Angle:
        """Edges ``(x_lo, x_hi, y_lo, y_hi)`` of the bin holding ``coord = (x, y)``."""
        ix, iy = self.find_coord_bin(coord)
        x = self.detx_axis.bin(ix)
        y = self.dety_axis.bin(iy).to(x.unit)
        from astropy.coordinates import Angle

        return Angle(u.Quantity([x[0], x[1], y[0], y[1]]))

"""FITS input and output of `bgcube.FOVCube`: thin methods over `bgcube.io`.

The original API's ``read``/``write`` and the ``read -> from_hdulist ->
from_table`` chain, as a base of `bgcube.FOVCube`. The readers build the
class they are called on (``cls``), so subclasses survive I/O; the work
(formats, HDU look-up, atomic writes) is done in `bgcube.io`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from .services import service

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.table import Table

    from ._types import BackendLike, PathLike

__all__ = ["CubeIO"]


class CubeIO:
    """``read``, ``write``, ``from_table``, ``to_table``, ``from_hdulist``, ``to_hdulist`` (a mixin)."""

    @classmethod
    def read(
        cls,
        filename: PathLike,
        format: str = "table",
        scheme: str | None = None,
        hdu: int | str | None = None,
        *,
        layout: str | None = None,
        backend: BackendLike = None,
    ) -> Self:
        """Read a cube from a FITS file.

        Parameters
        ----------
        filename : str or path
            ``.fits`` or ``.fits.gz``.
        format : {'table', 'image'}
            'table': a BKG_3D-style binary table (GADF, H.E.S.S. DR1, CTA 1DC,
            CTAO prod5, original Gammapy FOVCube files); 'image': the ds9
            image format written by ``write(..., format='image')``.
        scheme : {'bg_cube', 'bg_counts_cube', 'bg_livetime_cube', None}, optional
            Default: inferred from the file (data column BKG/BGD/Bgd ->
            'bg_cube', COUNTS -> 'bg_counts_cube', LIVETIME ->
            'bg_livetime_cube', DATA -> None).
        hdu : int or str, optional
            HDU to read; default the scheme's HDU, else the BKG_3D one.
        layout : str, optional
            Force the stored axis order (see `bgcube.io.formats.LAYOUTS`);
            by default it is found from TDIM and the shape as Gammapy does.
        backend : str or module, optional
            Put the data on this backend (default NumPy).

        Returns
        -------
        cube : FOVCube
            Data indexed ``[energy, dety, detx]``.

        Raises
        ------
        bgcube.errors.FileFormatError
            Missing HDU or column, inconsistent edges, a data size that fits
            no axis order, or an unparsable unit; the message names file,
            HDU and problem.
        """
        return service("read_cube")(
            filename, format, scheme, hdu, layout=layout, backend=backend, cls=cls
        )

    def write(
        self,
        filename: PathLike,
        format: str = "table",
        overwrite: bool = False,
        clobber: bool | None = None,
        *,
        legacy: bool = False,
    ) -> None:
        """Write the cube to a FITS file, atomically.

        Parameters
        ----------
        filename : str or path
            A ``.fits.gz`` name gives a gzipped file.
        format : {'table', 'image'}
            'table': GADF BKG_3D binary table (Gammapy reads it); 'image':
            primary image with a DETX/DETY/energy WCS plus EBOUNDS and
            DETBOUNDS tables (ds9 opens it).
        overwrite : bool
            Replace an existing file (default False).
        clobber : bool, optional
            Deprecated alias of ``overwrite``.
        legacy : bool
            Table format: write the original FOVCube layout (column ``Bgd``
            for background cubes, no GADF keywords).

        Raises
        ------
        bgcube.errors.OutputExistsError
            If the file exists and ``overwrite`` is false.
        """
        overwrite = service("resolve_overwrite")(overwrite, clobber)
        service("write_cube")(self, filename, format, overwrite, legacy=legacy)

    @classmethod
    def from_table(
        cls,
        table: Table,
        scheme: str | None = None,
        *,
        layout: str | None = None,
        backend: BackendLike = None,
    ) -> Self:
        """A cube from a one-row BKG_3D-style `~astropy.table.Table` (see `read`)."""
        return service("cube_from_table")(table, scheme, layout=layout, backend=backend, cls=cls)

    def to_table(self, *, legacy: bool = False) -> Table:
        """The cube as a one-row BKG_3D `~astropy.table.Table`, keywords in ``meta``."""
        return service("cube_to_table")(self, legacy=legacy)

    @classmethod
    def from_hdulist(
        cls,
        hdulist: fits.HDUList,
        format: str = "table",
        scheme: str | None = None,
        hdu: int | str | None = None,
        *,
        layout: str | None = None,
        backend: BackendLike = None,
    ) -> Self:
        """A cube from an open `~astropy.io.fits.HDUList` (see `read`)."""
        return service("cube_from_hdulist")(
            hdulist, format, scheme, hdu, layout=layout, backend=backend, cls=cls
        )

    def to_hdulist(self, format: str = "table", *, legacy: bool = False) -> fits.HDUList:
        """The cube as an `~astropy.io.fits.HDUList` in ``format`` (see `write`)."""
        return service("cube_to_hdulist")(self, format, legacy=legacy)

"""FITS input and output of `bgcube.FOVCubeBackgroundModel`: thin methods over `bgcube.io`.

The original API's ``read`` and ``write`` (accepting the old ``clobber=``),
as a base of `bgcube.FOVCubeBackgroundModel`; the readers build the class
they are called on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from .cube import FOVCube
from .services import service

if TYPE_CHECKING:
    from ._types import BackendLike, PathLike

__all__ = ["ModelIO"]


class ModelIO:
    """``read`` and ``write`` (a mixin)."""

    @classmethod
    def read(
        cls, filename: PathLike, format: str = "table", *, backend: BackendLike = None
    ) -> Self:
        """Read a background model file.

        Parameters
        ----------
        filename : str or path
            'table' format: HDUs COUNTS, LIVETIME and BACKGROUND (as the
            original ``bg_cube_model_test2.fits.gz``), or BACKGROUND alone.
        format : {'table', 'image'}
            'image' files hold the background cube only.
        backend : str or module, optional
            Put the cubes on this backend (default NumPy).

        Returns
        -------
        model : FOVCubeBackgroundModel
            ``counts_cube`` and ``livetime_cube`` are None when the file has
            no COUNTS/LIVETIME HDUs. ``time_convention`` comes from the
            BKG_TIME keyword; files without it read as 'ONTIME' when the
            background HDU is GADF, else 'LIVETIME' (the original files).

        Raises
        ------
        bgcube.errors.FileFormatError
            If the file has no background cube or a cube cannot be read.
        """
        return service("read_model")(filename, format, backend=backend, cls=cls, cube_cls=FOVCube)

    def write(
        self,
        filename: PathLike,
        format: str = "table",
        overwrite: bool = False,
        clobber: bool | None = None,
        *,
        legacy: bool = False,
    ) -> None:
        """Write the model to a FITS file, atomically.

        Parameters
        ----------
        filename : str or path
            A ``.fits.gz`` name gives a gzipped file.
        format : {'table', 'image'}
            'table': COUNTS, LIVETIME and BACKGROUND HDUs (only BACKGROUND when
            the counts are empty), BKG_TIME in the headers; 'image': the
            background cube in the ds9 image format.
        overwrite : bool
            Replace an existing file (default False).
        clobber : bool, optional
            Deprecated alias of ``overwrite``.
        legacy : bool
            Table format: the original FOVCube layout (background column ``Bgd``).

        Raises
        ------
        bgcube.errors.OutputExistsError
            If the file exists and ``overwrite`` is false.
        ValueError
            If the model has no background cube.
        """
        overwrite = service("resolve_overwrite")(overwrite, clobber)
        service("write_model")(self, filename, format, overwrite, legacy=legacy)

"""Background-model files: the counts, time and rate cubes of one model.

'table' format (as the original ``bg_cube_model_test2.fits.gz``): HDUs
COUNTS, LIVETIME and BACKGROUND, each a BKG_3D-style table. When the
counts cube is missing or empty (all zero), only BACKGROUND is written.
The time convention (ONTIME or LIVETIME; see
`bgcube.model.FOVCubeBackgroundModel`) is stored as BKG_TIME in the
LIVETIME and BACKGROUND headers. Files without it read as ONTIME when the
background is a GADF HDU (GADF rates are per unit ontime: Gammapy predicts
counts as rate x ONTIME) and as LIVETIME otherwise (the original FOVCube
files, normalised by livetime).

'image' format: the background cube alone, as `bgcube.io.image` writes it
(the original FOVCubeBackgroundModel did the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from astropy.io import fits

from ..backend import to_numpy
from ..errors import BinningError, DataUnitError, FileFormatError
from .files import (
    FORMATS,
    check_read_arguments,
    cube_from_hdulist,
    cube_to_hdulist,
    image_format_hint,
    select_table_hdu,
    write_fits_bytes,
    write_hdulist,
)
from .fits import open_fits, user_path
from .formats import TIME_CONVENTIONS
from .lean_write import primary_hdu_bytes, table_hdu_bytes
from .table import cube_to_table_hdu

if TYPE_CHECKING:
    from .._types import BackendLike, ModelLike, PathLike

__all__ = ["read_model", "write_model", "model_to_hdulist", "model_from_hdulist"]

#: Keyword holding the time convention.
TIME_KEYWORD = "BKG_TIME"

#: Convention of files that do not say: GADF's, else the original FOVCube's.
DEFAULT_GADF_TIME = "ONTIME"
DEFAULT_FILE_TIME = "LIVETIME"

_HDUS = {
    "counts_cube": ("COUNTS", "bg_counts_cube"),
    "livetime_cube": ("LIVETIME", "bg_livetime_cube"),
    "background_cube": ("BACKGROUND", "bg_cube"),
}


def _is_empty(cube) -> bool:
    if cube is None:
        return True
    return not bool(to_numpy(cube.xp.any(cube.data != 0)))


def _with_time(cube, convention):
    copy = cube.copy()
    copy.meta[TIME_KEYWORD] = convention
    return copy


def model_to_hdulist(model, format="table", *, legacy=False):
    """The model as an `~astropy.io.fits.HDUList` (see the module docstring).

    Raises
    ------
    ValueError
        If the model has no background cube (call ``compute_rate()`` first)
        or ``format`` is unknown.
    """
    if format not in FORMATS:
        raise ValueError(f"invalid format {format!r}; expected one of {FORMATS}")
    if model.background_cube is None:
        raise ValueError("the model has no background cube to write; call compute_rate() first")
    if format == "image":
        return cube_to_hdulist(_with_time(model.background_cube, model.time_convention), "image")
    hdus = [cube_to_table_hdu(cube, legacy=legacy) for cube in _table_cubes(model)]
    return fits.HDUList([fits.PrimaryHDU(), *hdus])


def _table_cubes(model):
    """The cubes of the table format, in file order (counts and time only when filled)."""
    convention = model.time_convention
    background = _with_time(model.background_cube, convention)
    if _is_empty(model.counts_cube) or model.livetime_cube is None:
        return [background]
    return [model.counts_cube, _with_time(model.livetime_cube, convention), background]


def write_model(
    model: ModelLike,
    filename: PathLike,
    format: str = "table",
    overwrite: bool = False,
    *,
    legacy: bool = False,
) -> None:
    """Write a background model to a FITS file, atomically.

    Parameters
    ----------
    model : FOVCubeBackgroundModel
    filename : str or path
        ``.fits.gz`` gives a gzipped file.
    format : {'table', 'image'}
    overwrite : bool
        Replace an existing file (default False).
    legacy : bool
        Table format: the original FOVCube layout (data column ``Bgd``).

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    """
    if format == "table" and model.background_cube is not None:
        # the same bytes as model_to_hdulist's HDUs, without building them (tested)
        cubes = _table_cubes(model)
        data = primary_hdu_bytes() + b"".join(table_hdu_bytes(c, legacy=legacy) for c in cubes)
        write_fits_bytes(data, filename, overwrite)
        return
    if format == "image" and model.background_cube is not None:
        from .lean_image import image_file_bytes  # the same bytes, without HDU objects

        data = image_file_bytes(_with_time(model.background_cube, model.time_convention))
        if data is not None:
            write_fits_bytes(data, filename, overwrite)
            return
    write_hdulist(model_to_hdulist(model, format, legacy=legacy), filename, overwrite)


def _time_convention(cubes, filename, default):
    for name in ("background_cube", "livetime_cube"):
        cube = cubes.get(name)
        if cube is not None and TIME_KEYWORD in cube.meta:
            value = str(cube.meta[TIME_KEYWORD]).strip().upper()
            if value not in TIME_CONVENTIONS:
                raise FileFormatError(
                    f"{TIME_KEYWORD} = {value!r}; expected one of {TIME_CONVENTIONS}",
                    filename=filename,
                    hdu=_HDUS[name][0],
                )
            return value
    return default


def model_from_hdulist(hdulist, format="table", *, backend=None, filename=None, cls, cube_cls):
    """Read a background model from an open HDUList (see `read_model`)."""
    check_read_arguments(format, backend=backend)
    cubes = {}
    default_time = DEFAULT_FILE_TIME
    if format == "image":
        cubes["background_cube"] = cube_from_hdulist(
            hdulist, "image", "bg_cube", backend=backend, filename=filename, cls=cube_cls
        )
    else:
        with image_format_hint(hdulist, filename):
            background = select_table_hdu(hdulist, None, "bg_cube", filename)
        if background.header.get("HDUCLASS") == "GADF":
            default_time = DEFAULT_GADF_TIME
        for name, (extname, scheme) in _HDUS.items():
            if name == "background_cube" or extname in hdulist:
                cubes[name] = cube_from_hdulist(
                    hdulist, "table", scheme, backend=backend, filename=filename, cls=cube_cls
                )
    convention = _time_convention(cubes, filename, default_time)
    try:
        return cls(**cubes, time_convention=convention)
    except (BinningError, DataUnitError) as exc:  # cubes of the file that disagree
        raise FileFormatError(str(exc), filename=filename) from exc


def read_model(
    filename: PathLike,
    format: str = "table",
    *,
    backend: BackendLike = None,
    cls: type,
    cube_cls: type,
) -> ModelLike:
    """Read a background model file.

    Parameters
    ----------
    filename : str or path
    format : {'table', 'image'}
    backend : str or module, optional
        Backend of the cubes (default NumPy).
    cls, cube_cls : type
        The model and cube classes to build (`bgcube.FOVCubeBackgroundModel`
        and `bgcube.FOVCube` or subclasses); io knows no container class.

    Returns
    -------
    model : cls
        Counts and time cubes are None when the file holds only the background.

    Raises
    ------
    ValueError
        An unknown ``format`` or ``backend``, before the file is opened.
    FileFormatError
        If the file has no background cube or a cube cannot be read.
    """
    check_read_arguments(format, backend=backend)
    filename = user_path(filename)
    with open_fits(filename, memmap=False) as hdulist:
        return model_from_hdulist(
            hdulist, format, backend=backend, filename=str(filename), cls=cls, cube_cls=cube_cls
        )

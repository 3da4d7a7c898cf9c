"""FITS input and output of cubes and background models.

Modules
-------
formats
    Plain-data facts: column names, axis orders, header keywords.
units
    Lenient unit parsing on read, FITS unit strings on write.
layout
    Axis order of the stored data array (agrees with Gammapy 2.x).
table
    BKG_3D-style binary tables (GADF, H.E.S.S., CTA, original FOVCube).
image
    The ds9-friendly image format (image + EBOUNDS + DETBOUNDS).
files
    Open a file, choose the HDU, read or write one cube.
model
    Background-model files (COUNTS, LIVETIME, BACKGROUND).
atomic
    Atomic, no-clobber file output used by every writer.

The user-facing entry points are the methods ``FOVCube.read/write`` and
``FOVCubeBackgroundModel.read/write``, which delegate here.
"""

from .atomic import atomic_output
from .files import (
    FORMATS,
    cube_from_hdulist,
    cube_to_hdulist,
    read_cube,
    write_cube,
    write_hdulist,
)
from .image import cube_from_image_hdulist, cube_to_image_hdulist
from .model import read_model, write_model
from .table import cube_from_table, cube_from_table_hdu, cube_to_table, cube_to_table_hdu

__all__ = [
    "FORMATS",
    "atomic_output",
    "cube_from_hdulist",
    "cube_from_image_hdulist",
    "cube_from_table",
    "cube_from_table_hdu",
    "cube_to_hdulist",
    "cube_to_image_hdulist",
    "cube_to_table",
    "cube_to_table_hdu",
    "read_cube",
    "read_model",
    "write_cube",
    "write_hdulist",
    "write_model",
]

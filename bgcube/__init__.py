"""bgcube: 3D background models for Imaging Atmospheric Cherenkov Telescopes.

A background model is a rate cube over field-of-view coordinates (DETX,
DETY) and reconstructed energy, in 1/(MeV s sr). bgcube's array core runs on
NumPy, JAX, CuPy or any Array API library; its shell speaks astropy.
"""

from ._array.namespace import BACKENDS, BackendUnavailableError, get_namespace
from .axes import CubeAxis
from .cube import FOVCube
from .model import FOVCubeBackgroundModel

__version__ = "0.1.0.dev0"

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "CubeAxis",
    "FOVCube",
    "FOVCubeBackgroundModel",
    "get_namespace",
    "__version__",
]

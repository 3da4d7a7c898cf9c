"""bgcube: 3D background models for Imaging Atmospheric Cherenkov Telescopes.

A background model is a rate cube over field-of-view coordinates (DETX,
DETY) and reconstructed energy, in 1/(MeV s sr). bgcube's array core
(:mod:`bgcube.array`) runs on NumPy, JAX, CuPy or any Array API library; its
shell speaks astropy.

The public names are imported lazily, so that ``import bgcube.array`` needs
neither astropy nor matplotlib.
"""

import importlib

__version__ = "0.1.0.dev0"

#: public name -> module that defines it
_LAZY = {
    "BACKENDS": "bgcube.array.namespace",
    "BackendUnavailableError": "bgcube.array.namespace",
    "get_namespace": "bgcube.array.namespace",
    "CubeAxis": "bgcube.axes",
    "FOVCube": "bgcube.cube",
    "FOVCubeBackgroundModel": "bgcube.model",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bgcube' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

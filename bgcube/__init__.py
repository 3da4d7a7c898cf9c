"""bgcube: 3D background models for Imaging Atmospheric Cherenkov Telescopes.

A background model is a rate cube over field-of-view coordinates (DETX,
DETY) and reconstructed energy, in 1/(MeV s sr). bgcube's array core
(:mod:`bgcube.array`) runs on NumPy, JAX, CuPy or any Array API library; its
shell speaks astropy.

The public names are imported lazily, so that ``import bgcube.array`` needs
neither astropy nor matplotlib, and ``import bgcube`` costs nothing until a
name is used. Layers (outermost first; each imports only those below it, a
test holds that): ``cli`` -> ``simulate`` -> ``make`` -> ``data``, ``fit``,
``io``, ``plotting`` -> ``model`` -> ``cube`` -> ``axes``, ``binning``,
``event_columns``, ``backend``, ``smoothing``, ``services`` -> ``array`` ->
``errors``. This front door is the one place that wires a higher layer into
a lower one: it registers `bgcube.fit`'s smoothing as
``FOVCubeBackgroundModel.smooth``'s ``method='fit'`` (see
`bgcube.smoothing`) and the FITS I/O and plotting functions that the
containers' ``read``, ``write`` and plot methods call (see
`bgcube.services`), each module imported on first use.
"""

import importlib

from .services import provide as _provide
from .smoothing import register_smoothing_method as _register_smoothing_method

#: The version, in this one place (pyproject.toml reads it from here).
__version__ = "0.1.0.dev0"

#: public name -> module that defines it
_LAZY = {
    "BACKENDS": "bgcube.array.namespace",
    "BackendUnavailableError": "bgcube.array.namespace",
    "get_namespace": "bgcube.array.namespace",
    "CubeAxis": "bgcube.axes",
    "FOVCube": "bgcube.cube",
    "FOVCubeBackgroundModel": "bgcube.model",
    "DataStore": "bgcube.data.store",
    "Observation": "bgcube.data.observation",
    "EventList": "bgcube.data.events",
    "ExclusionRegions": "bgcube.data.exclusion",
    "make_models": "bgcube.make.pipeline",
    "MakeModelsResult": "bgcube.make.pipeline",
    "apply_models": "bgcube.make.apply",
    "JointBackgroundModel": "bgcube.fit.joint",
    "RadialBackground": "bgcube.radial",
    "ConditionError": "bgcube.errors",
    "FitError": "bgcube.errors",
    "BgcubeError": "bgcube.errors",
    "FileFormatError": "bgcube.errors",
    "BinningError": "bgcube.errors",
    "EventDataError": "bgcube.errors",
    "ObservationError": "bgcube.errors",
    "DataNotFoundError": "bgcube.errors",
    "OutputExistsError": "bgcube.errors",
    "BgcubeWarning": "bgcube.errors",
    "BuildNoteWarning": "bgcube.errors",
}

__all__ = [*_LAZY, "__version__"]


def _smooth_by_fit(bg_model, model=None, **kwargs):
    """``FOVCubeBackgroundModel.smooth(method='fit')``: `bgcube.fit.smooth_by_fit` (JAX)."""
    from .fit import smooth_by_fit

    smooth_by_fit(bg_model, model, **kwargs)


_register_smoothing_method("fit", _smooth_by_fit)

# the containers' read / write / plot methods call FITS I/O and plotting, layers above them
for _name, _module in (
    ("read_cube", "bgcube.io"),
    ("write_cube", "bgcube.io"),
    ("cube_from_table", "bgcube.io"),
    ("cube_to_table", "bgcube.io"),
    ("cube_from_hdulist", "bgcube.io"),
    ("cube_to_hdulist", "bgcube.io"),
    ("read_model", "bgcube.io"),
    ("write_model", "bgcube.io"),
    ("resolve_overwrite", "bgcube.io.atomic"),
    ("read_bkg_2d", "bgcube.io.bkg2d"),
    ("write_bkg_2d", "bgcube.io.bkg2d"),
    ("plot_image", "bgcube.plotting"),
    ("plot_spectrum", "bgcube.plotting"),
    ("peek", "bgcube.plotting"),
):
    _provide(_name, _module, _name)
del _name, _module


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bgcube' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

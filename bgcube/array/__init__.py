"""The array core of bgcube: pure Array API, no astropy, no matplotlib.

Unitless floats in canonical units (deg, TeV, s). Every function finds its
namespace from its array arguments or takes ``xp=`` keyword-only, and
returns arrays in the input's namespace and on its device.
"""

from .binning import Binning, bin_index
from .histogram import FILL_METHODS, default_fill_method, fill_histogram, flat_bin_index
from .interpolate import integrate_energy_log_log, interpolate_cube
from .namespace import (
    BACKENDS,
    BackendUnavailableError,
    array_device,
    array_namespace,
    backend_name,
    get_namespace,
)
from .normalise import bin_volume, compute_rate, solid_angle
from .smooth import K5A, convolve_k5a, n_smooth_passes, smooth_images
from .stream import HistogramFiller, fill_histogram_chunks

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "Binning",
    "FILL_METHODS",
    "HistogramFiller",
    "K5A",
    "array_device",
    "array_namespace",
    "backend_name",
    "bin_index",
    "bin_volume",
    "compute_rate",
    "convolve_k5a",
    "default_fill_method",
    "fill_histogram",
    "fill_histogram_chunks",
    "flat_bin_index",
    "get_namespace",
    "integrate_energy_log_log",
    "interpolate_cube",
    "n_smooth_passes",
    "smooth_images",
    "solid_angle",
]

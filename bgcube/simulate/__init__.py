"""Simulation: the original test background model, simulated DL3 data sets, truth comparisons.

Modules
-------
testmodel
    `make_test_bg_cube_model`, the original Gammapy test model (reproduces
    ``bg_cube_model_true.fits.gz``), and `altitude_norm`.
observations
    `make_test_observation_table`: pointings, times, telescopes, dead time.
sources
    `GaussianSource` gamma-ray sources and `example_sources`.
sampling
    Exact Poisson sampling of events from a binned rate.
files
    GADF event files and index tables in the H.E.S.S. DL3 DR1 layout.
dataset
    `make_test_dataset` and `SimulatedDataset` (the truth of any set of runs).
truth
    True models and exact integration of a binned rate over other bins.
compare
    `compare_models`: ratios and Poisson pulls of a reconstruction.
plot
    `plot_comparison` (matplotlib, imported lazily).
"""

from .compare import ModelComparison, compare_models
from .dataset import SimulatedDataset, make_test_background, make_test_dataset
from .observations import HESS_SITE, hess_location, make_test_observation_table
from .plot import plot_comparison
from .sources import GaussianSource, example_sources, sources_table
from .testmodel import altitude_norm, make_test_bg_cube_model
from .truth import integrate_rate, true_model

__all__ = [
    "GaussianSource",
    "HESS_SITE",
    "ModelComparison",
    "SimulatedDataset",
    "altitude_norm",
    "compare_models",
    "example_sources",
    "hess_location",
    "integrate_rate",
    "make_test_background",
    "make_test_bg_cube_model",
    "make_test_dataset",
    "make_test_observation_table",
    "plot_comparison",
    "sources_table",
    "true_model",
]

"""Making background models from observations: binning, grouping, filling, the pipeline."""

from ..binning import cube_shape, define_cube_binning
from ..data.fill import ObservationFill, fill_observation, fill_observations
from .grouping import ObservationGroups
from .pipeline import MakeModelsResult, make_models

__all__ = [
    "MakeModelsResult",
    "ObservationFill",
    "ObservationGroups",
    "cube_shape",
    "define_cube_binning",
    "fill_observation",
    "fill_observations",
    "make_models",
]

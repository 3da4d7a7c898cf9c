"""Making background models from observations: grouping (and, later, the pipeline)."""

from .grouping import ObservationGroups

__all__ = ["ObservationGroups"]

"""Observations: event lists, times, field-of-view coordinates, data stores, exclusion, IRFs."""

from .events import EventList, event_coordinates
from .exclusion import (
    ExclusionRegions,
    default_exclusion_regions,
    excluded_events,
    kept_fraction,
    observation_kept_fraction,
)
from .fov import fov_altaz_to_radec, fov_to_sky, radec_to_fov_altaz, rotate_fov, sky_to_fov
from .irf import effective_area_at, with_effective_area
from .observation import GTI, Observation
from .store import DataStore, select_observations

__all__ = [
    "DataStore",
    "EventList",
    "ExclusionRegions",
    "GTI",
    "Observation",
    "default_exclusion_regions",
    "effective_area_at",
    "event_coordinates",
    "excluded_events",
    "fov_altaz_to_radec",
    "fov_to_sky",
    "kept_fraction",
    "observation_kept_fraction",
    "radec_to_fov_altaz",
    "rotate_fov",
    "select_observations",
    "sky_to_fov",
    "with_effective_area",
]

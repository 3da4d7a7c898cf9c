"""Filling a background model from observations: events minus exclusions, and time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..errors import BgcubeError
from ..progress import progress_bar
from .exclusion import (
    ExclusionRegions,
    event_offsets,
    excluded_events,
    exclusion_reach,
    observation_kept_fraction,
)

if TYPE_CHECKING:
    from .._types import ModelLike

__all__ = ["ObservationFill", "fill_observation", "fill_observations"]


@dataclass
class ObservationFill:
    """What one observation added to a model.

    Attributes
    ----------
    obs_id : int
    n_events : int
        Events read from the file.
    n_excluded : int
        Events dropped because they fall inside an exclusion region.
    n_filled : int
        Events that landed inside the cube.
    time : `~astropy.units.Quantity`
        The observation time added (ONTIME or LIVETIME), before exclusion.
    exclusion_reach : tuple of float or None
        With exclusion regions: ``(ra, dec, radius)``, deg, the sky circle
        outside which no exclusion circle changes what the observation
        added (`~bgcube.data.exclusion_fraction.exclusion_reach`); None
        without regions (every change of the regions counts).
    """

    obs_id: int
    n_events: int
    n_excluded: int
    n_filled: int
    time: u.Quantity
    exclusion_reach: tuple | None = None


def fill_observation(
    model: ModelLike, observation: Any, regions: ExclusionRegions | None = None
) -> ObservationFill:
    """Add one observation's events and time to a model.

    Events inside an exclusion region are dropped; the time of each
    (DETY, DETX) pixel is reduced by the excluded fraction of that pixel for
    this observation's pointing, so the rate stays unbiased.

    Parameters
    ----------
    model : `~bgcube.FOVCubeBackgroundModel`
        The model to fill (its binning and time convention are used).
    observation : `~bgcube.data.observation.Observation`
        With DETX/DETY in the model's field-of-view alignment.
    regions : `~bgcube.data.exclusion.ExclusionRegions`, optional

    Returns
    -------
    fill : ObservationFill
    """
    regions = ExclusionRegions.empty() if regions is None else regions
    events = observation.events
    counts = model.counts_cube
    # everything that can fail comes before the model is touched
    time = observation.observation_time(model.time_convention)
    offsets = event_offsets(observation) if len(regions) else None  # once for both uses
    inside = excluded_events(observation, regions, offsets=offsets)
    fraction = reach = None
    if len(regions):
        edges = (counts.detx_axis.edges_canonical, counts.dety_axis.edges_canonical)
        # edges in deg, as floats: no Angles made
        fraction = observation_kept_fraction(observation, regions, *edges)
        largest = float(offsets.max()) if offsets.size else 0.0
        reach = exclusion_reach(observation, *edges, event_reach=largest)
    kept = events.select(~inside) if inside.any() else events
    before = float(counts.xp.sum(counts.data))
    model.fill_events([kept])
    model.add_observation_time(time, kept_fraction=fraction)
    after = float(counts.xp.sum(model.counts_cube.data))
    return ObservationFill(
        obs_id=observation.obs_id,
        n_events=len(events),
        n_excluded=int(np.count_nonzero(inside)),
        n_filled=int(round(after - before)),
        time=time,
        exclusion_reach=reach,
    )


def fill_observations(
    model: ModelLike,
    obs_ids: Sequence[int],
    data_store: Any,
    regions: ExclusionRegions | None = None,
    *,
    alignment: str = "RADEC",
    fail_fast: bool = False,
    progress: bool | None = None,
    desc: str | None = None,
) -> tuple[list[ObservationFill], list[tuple[int, str]]]:
    """Fill a model from observations of a data store.

    Parameters
    ----------
    model : `~bgcube.FOVCubeBackgroundModel`
    obs_ids : sequence of int
    data_store : `~bgcube.data.store.DataStore`
    regions : `~bgcube.data.exclusion.ExclusionRegions`, optional
    alignment : {'RADEC', 'ALTAZ'}
        Field-of-view alignment of the model.
    fail_fast : bool
        Stop at the first unreadable observation (default: record it and go on).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    desc : str, optional
        Progress-bar label.

    Returns
    -------
    filled : list of ObservationFill
    failed : list of (int, str)
        OBS_ID and reason of each observation left out.
    """
    filled, failed = [], []
    obs_ids = [int(i) for i in obs_ids]
    for obs_id in progress_bar(obs_ids, total=len(obs_ids), desc=desc, enabled=progress):
        try:
            observation = data_store.observation(obs_id, fov_alignment=alignment)
            filled.append(fill_observation(model, observation, regions))
        except BgcubeError as exc:
            if fail_fast:
                raise
            failed.append((obs_id, str(exc)))
    return filled, failed

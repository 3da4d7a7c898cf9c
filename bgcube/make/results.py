"""What a make-models build produces: the output file names and the result objects."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
from astropy.table import Table

from ..errors import BuildNoteWarning
from ..model import FOVCubeBackgroundModel
from .chain_backend import DeferredModel

__all__ = ["OUTPUT_NAMES", "GroupResult", "MakeModelsResult"]

#: Output files of the group models (``model='groups'``), as the original
#: ``gammapy-make-bg-cube-models`` names them.
OUTPUT_NAMES = {
    "observations": "bg_observation_table.fits.gz",
    "grouped": "bg_observation_table_grouped.fits.gz",
    "groups": "bg_observation_groups.ecsv",
    "exclusion": "bg_exclusion_regions.ecsv",
    "model_table": "bg_cube_model_group{group_id}_table.fits.gz",
    "model_image": "bg_cube_model_group{group_id}_image.fits.gz",
}


class _OnBackend:
    """The ``model`` field of `GroupResult`: a `DeferredModel` moves to its backend when read."""

    def __set_name__(self, owner, name):
        self.attribute = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return None  # the field's default
        value = obj.__dict__.get(self.attribute)
        if isinstance(value, DeferredModel):
            value = obj.__dict__[self.attribute] = value.resolve()
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.attribute] = value


@dataclass
class GroupResult:
    """One group's model and how it was made.

    ``model`` is on the build's backend; a build whose chain ran on the host
    (`bgcube.make.chain_backend`) moves it there when it is first read.
    """

    group_id: int
    zenith_range: tuple[float, float]
    azimuth_range: tuple[float, float]
    obs_ids: list[int]
    model: FOVCubeBackgroundModel | None = _OnBackend()
    n_events: int = 0
    n_excluded: int = 0
    n_filled: int = 0
    time: u.Quantity = field(default_factory=lambda: 0 * u.s)
    files: list[Path] = field(default_factory=list)


@dataclass
class MakeModelsResult:
    """What `make_models` did: per-group results, failures and files written."""

    groups: list[GroupResult]
    failed: list[tuple[int, str]]
    files: list[Path]
    time_convention: str
    #: Per-run models (`~bgcube.make.per_observation.PerObservationModel`) by
    #: OBS_ID when ``per_observation`` was given, else empty.
    observations: dict = field(default_factory=dict)
    #: OBS_IDs whose partial cubes came from the checkpoint of an interrupted build.
    reused: list[int] = field(default_factory=list)
    #: Notes about the checkpoint (what was resumed or discarded).
    messages: list[str] = field(default_factory=list)
    #: The joint build (`bgcube.make.joint.JointBuildResult`) when ``model='joint'``.
    joint: object = None
    #: Files of an earlier build in OUTDIR that this build did not write, removed
    #: after it (``overwrite=True``; `bgcube.make.earlier_outputs`).
    removed: list[Path] = field(default_factory=list)

    def summary_table(self) -> Table:
        """One row per group (GROUP_ID, zenith/azimuth range, N_OBS, events, time, cube
        shape); for the joint model one row per run (`JointBuildResult.summary_table`)."""
        if self.joint is not None:
            return self.joint.summary_table()
        rows = []
        for g in self.groups:
            model = g.__dict__.get("_model")  # as it is: the shape moves nothing
            model = model.host if isinstance(model, DeferredModel) else model
            shape = model.counts_cube.shape if model is not None else ()
            rows.append(
                (
                    g.group_id,
                    f"{g.zenith_range[0]:g}-{g.zenith_range[1]:g}",
                    f"{g.azimuth_range[0]:g}-{g.azimuth_range[1]:g}",
                    len(g.obs_ids),
                    g.n_events,
                    g.n_excluded,
                    g.n_filled,
                    round(float(g.time.to_value(u.h)), 2),
                    "x".join(str(n) for n in shape) or "-",
                )
            )
        names = (
            "GROUP_ID",
            "ZENITH",
            "AZIMUTH",
            "N_OBS",
            "N_EVENTS",
            "N_EXCLUDED",
            "N_IN_CUBE",
            f"{self.time_convention}_H",
            "SHAPE(E,Y,X)",
        )
        return Table(rows=rows, names=names) if rows else Table(names=names)


def warn_notes(messages, stacklevel: int = 3) -> None:
    """Each note of a build (its result's ``messages``) as a `~bgcube.errors.BuildNoteWarning`.

    Parameters
    ----------
    messages : sequence of str
        The notes.
    stacklevel : int
        As `warnings.warn`'s, counted from the caller of this function.
    """
    for message in messages:
        warnings.warn(message, BuildNoteWarning, stacklevel=stacklevel + 1)

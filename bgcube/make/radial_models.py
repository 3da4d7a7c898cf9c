"""Radially symmetric (BKG_2D) group models: made by make-models, applied by apply-models.

With ``model_type='2d'`` ``make_models`` also writes, per group,
``bg_2d_model_group<ID>.fits.gz``: the group's unsmoothed counts and time
cubes reduced to (energy, offset) (`bgcube.radial.radial_from_cubes`), as a
GADF BKG_2D table that Gammapy's ``Background2D.read`` reads to identical
values. A radial model has many more counts per bin than a 3D one, so it is
not smoothed.

`RadialGroupModels` is the model source (`bgcube.make.model_source`) of such
a folder: a run's model is its own group's model, or the group models
interpolated linearly in cos(zenith), on the binning of its own group, the
group and the models chosen as for the 3D models (`bgcube.make.group_source`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError
from ..radial import RadialBackground, radial_from_cubes
from .group_source import GroupFolder, read_group_folder
from .model_source import JOINT_MODEL_NAME
from .results import OUTPUT_NAMES

__all__ = [
    "MODEL_TYPES",
    "RADIAL_MODEL_NAME",
    "radial_group_files",
    "write_radial_group_models",
    "RadialGroupModels",
]

#: Accepted ``model_type`` values.
MODEL_TYPES = ("3d", "2d")
#: File name of a group's BKG_2D model.
RADIAL_MODEL_NAME = "bg_2d_model_group{group_id}.fits.gz"


def radial_group_files(outdir, group_ids):
    """The BKG_2D files ``write_radial_group_models`` writes for these groups."""
    return [Path(outdir) / RADIAL_MODEL_NAME.format(group_id=int(g)) for g in group_ids]


def write_radial_group_models(groups, outdir, time_convention, overwrite=False):
    """Write a BKG_2D model per group that has a model.

    Parameters
    ----------
    groups : sequence of `~bgcube.make.pipeline.GroupResult`
    outdir : str or path
    time_convention : {'ONTIME', 'LIVETIME'}
        Written as BKG_TIME.
    overwrite : bool

    Returns
    -------
    files : list of `~pathlib.Path`
    models : dict of int to `~bgcube.radial.RadialBackground`
        By group id.
    """
    files, models = [], {}
    for g in groups:
        if g.model is None:
            continue
        radial = radial_from_cubes(g.model.counts_cube, g.model.livetime_cube)
        radial.meta.update(BKG_TIME=time_convention, BKG_GRP=int(g.group_id), N_OBS=len(g.obs_ids))
        path = radial_group_files(outdir, [g.group_id])[0]
        radial.write(path, overwrite=overwrite)
        files.append(path)
        models[int(g.group_id)] = radial
    return files, models


class RadialGroupModels:
    """BKG_2D group models of a make-models folder, as a model source.

    Parameters
    ----------
    folder : `~bgcube.make.group_source.GroupFolder`
        The groups, with `~bgcube.radial.RadialBackground` models.
    """

    def __init__(self, folder: GroupFolder):
        self.folder = folder
        self.validity = folder.validity

    @property
    def models(self) -> list[RadialBackground]:
        """The groups' models, in ascending group id."""
        return list(self.folder.models.values())

    @property
    def group_ids(self) -> list[int]:
        """The ids of the groups with a model."""
        return list(self.folder.models)

    def __repr__(self):
        return f"RadialGroupModels(n_groups={len(self.models)}, validity={self.validity.ranges})"

    @classmethod
    def read(cls, modeldir) -> RadialGroupModels:
        """Read the BKG_2D group models of a make-models folder (``--model-type 2d``).

        Raises
        ------
        DataNotFoundError
            The folder does not exist or is not a group build, holds no
            BKG_2D group model, or lacks that of a group with runs (naming
            the file).
        """
        folder = Path(modeldir)
        how = "make them with make-models --model groups --model-type 2d"
        if not folder.is_dir():
            raise DataNotFoundError(
                f"model folder {str(folder)!r} "
                + ("is a file" if folder.is_file() else "does not exist")
                + ": give the folder of a group build with BKG_2D models (make-models "
                "--model groups --model-type 2d)"
            )
        if not (folder / OUTPUT_NAMES["groups"]).is_file():
            joint = (folder / JOINT_MODEL_NAME).is_file()
            raise DataNotFoundError(
                f"model folder {str(folder)!r} "
                + (f"holds a joint model ({JOINT_MODEL_NAME})" if joint else "is no group build")
                + f": BKG_2D models (--model-type 2d) come from group models only; {how}"
            )
        pattern = RADIAL_MODEL_NAME.format(group_id="*")
        if not any(folder.glob(pattern)):
            raise DataNotFoundError(
                f"model folder {str(folder)!r} has no BKG_2D group model "
                f"({RADIAL_MODEL_NAME.format(group_id='<ID>')}); {how}"
            )
        return cls(
            read_group_folder(
                folder,
                lambda folder, group_id: radial_group_files(folder, [group_id])[0],
                RadialBackground.read,
            )
        )

    def check(self, row) -> None:
        """Raise as `~bgcube.make.group_source.GroupFolder.own_group` for a run that cannot
        take the models (no model is made)."""
        self.folder.own_group(row)

    def background(self, row) -> RadialBackground:
        """The run's model: its group's, or the models interpolated in cos(zenith)."""
        gid, weights = self.folder.weights(row)
        models = self.folder.models
        like = models[gid]
        data = sum(w * models[i].resample(like).data for i, w in weights)
        out = like.copy(data=np.asarray(data, dtype=np.float64))
        out.meta["BKG_GRP"] = gid
        return out

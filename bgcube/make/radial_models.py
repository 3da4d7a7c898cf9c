"""Radially symmetric (BKG_2D) group models: made by make-models, applied by apply-models.

With ``model_type='2d'`` ``make_models`` also writes, per group,
``bg_2d_model_group<ID>.fits.gz``: the group's unsmoothed counts and time
cubes reduced to (energy, offset) (`bgcube.radial.radial_from_cubes`), as a
GADF BKG_2D table that Gammapy's ``Background2D.read`` reads to identical
values. A radial model has many more counts per bin than a 3D one, so it is
not smoothed.

`RadialGroupModels` is the model source (`bgcube.make.model_source`) of such
a folder: a run's model is the group models interpolated linearly in
cos(zenith), on the binning of the group nearest in cos(zenith).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError
from ..radial import RadialBackground, radial_from_cubes
from .model_source import read_group_models, zenith_interpolation_weights

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
    """BKG_2D group models of a make-models folder, interpolated in cos(zenith).

    Parameters
    ----------
    models : list of `~bgcube.radial.RadialBackground`
    cos_zenith : sequence of float
        Each group's centre (time-weighted mean cos(zenith) of its runs).
    validity : `~bgcube.make.model_source.Validity`
    group_ids : sequence of int, optional
    """

    def __init__(self, models, cos_zenith, validity, group_ids=None):
        self.models = list(models)
        self.cos_zenith = np.asarray(cos_zenith, dtype=np.float64)
        self.validity = validity
        self.group_ids = list(range(len(self.models))) if group_ids is None else list(group_ids)

    def __repr__(self):
        return f"RadialGroupModels(n_groups={len(self.models)}, validity={self.validity.ranges})"

    @classmethod
    def read(cls, modeldir) -> RadialGroupModels:
        """Read the BKG_2D group models of a make-models folder (``--model-type 2d``).

        Raises
        ------
        DataNotFoundError
            The folder lacks the group files or any BKG_2D group model.
        """
        models, nodes, ids, validity = read_group_models(
            modeldir,
            lambda folder, group_id: radial_group_files(folder, [group_id])[0],
            RadialBackground.read,
        )
        if not models:
            raise DataNotFoundError(
                f"model folder {str(modeldir)!r} has no BKG_2D group model "
                f"({RADIAL_MODEL_NAME}); make it with make-models --model-type 2d"
            )
        return cls(models, nodes, validity, ids)

    def background(self, row) -> RadialBackground:
        """The group models interpolated linearly in the run's cos(zenith)."""
        k, weights = zenith_interpolation_weights(row, self.cos_zenith)
        like = self.models[k]
        data = sum(w * self.models[i].resample(like).data for i, w in weights)
        out = like.copy(data=np.asarray(data, dtype=np.float64))
        out.meta["BKG_GRP"] = self.group_ids[k]
        return out

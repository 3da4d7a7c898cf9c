"""Model folders as model sources: the small interface behind ``bgcube apply-models``.

A *model source* is what a model folder becomes once loaded. It has two
members (and an optional third)::

    class ModelSource(Protocol):
        validity: Validity
        def background(self, row) -> FOVCube: ...

* ``background(row)``: the background rate cube of one run, given the run's
  observation-index row (an astropy ``Row``, or any mapping of column name to
  value): a `~bgcube.FOVCube` in 1/(MeV s sr), ``meta['FOVALIGN']`` 'RADEC'
  (Gammapy's convention) and ``meta['BKG_TIME']`` 'ONTIME' or 'LIVETIME'
  (the time the rate is per). Any binning; any backend (it is moved to the host).
  A radially symmetric source returns a `~bgcube.radial.RadialBackground`
  instead (written as BKG_2D; `bgcube.make.radial_models`).
* ``check(row)`` (optional): raises `~bgcube.errors.ConditionError` for a
  run the model cannot be evaluated for, without making its cube;
  ``apply_models`` finds such runs before writing anything (a source
  without it has each run's cube made once more for that).
* ``validity``: the range of conditions the model was built for
  (`Validity`: a closed range per observation-index column, e.g. ZEN_PNT,
  MUONEFF, SAFE_ENERGY_LO). ``apply_models`` leaves out a run outside it
  unless asked to extrapolate.

`load_model_source` picks a loader by the files in the folder: the first
entry of `LOADERS` whose file exists. Each entry is ``(file name, loader)``
with ``loader(modeldir) -> ModelSource``; `register_loader` puts a new kind in
front. The built-in loaders: `JointModelSource` reads the joint model that
``bgcube make-models`` writes by default (``bg_joint_model.fits.gz``) and
evaluates it at a run's conditions; `GroupModels` reads the group models of
``make-models --model groups`` (``bg_observation_groups.ecsv``, the grouped
observation table and the per-group cube files) and gives a run its group's
model, or the group models interpolated linearly in cos(zenith), as the
build gave its runs (`bgcube.make.group_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..cube import FOVCube
from ..errors import DataNotFoundError, FileFormatError
from .group_source import GroupModels
from .validity import Validity, row_value

__all__ = [
    "ModelSource",
    "Validity",
    "GroupModels",
    "JointModelSource",
    "LOADERS",
    "register_loader",
    "load_model_source",
    "row_value",
]


@runtime_checkable
class ModelSource(Protocol):
    """What a loaded model folder offers (see the module docstring)."""

    validity: Validity

    def background(self, row) -> FOVCube:
        """The rate cube of the run with this observation-index row."""
        ...


class JointModelSource:
    """A fitted joint model (``bg_joint_model.fits.gz``, `bgcube.fit.joint`) as a model source.

    ``background(row)`` evaluates the model at the run's conditions; a run
    of the model's own build also gets its night effect (estimated there
    from the other runs of its night), any other run none. ``validity``:
    the range of each condition column over the fitted runs, as the model
    file keeps it (the same for a model just fitted and one read back, so
    that make-models and apply-models judge a run alike;
    `bgcube.make.extrapolation`).
    """

    def __init__(self, model):
        self.model = model
        self.validity = Validity(
            {k: v for k, v in dict(model.validity).items() if k in self.condition_columns}
        )

    @property
    def condition_columns(self) -> tuple:
        """The run-table columns the model's conditions read."""
        return tuple(c.column for c in (*self.model.conditions, *self.model.spatial_conditions))

    def __repr__(self):
        return f"JointModelSource({self.model!r}, validity={self.validity.ranges})"

    @classmethod
    def read(cls, modeldir) -> JointModelSource:
        """Read ``modeldir/bg_joint_model.fits.gz``."""
        from ..fit.joint import JOINT_MODEL_FILE, JointBackgroundModel

        return cls(JointBackgroundModel.read(Path(modeldir) / JOINT_MODEL_FILE))

    def check(self, row) -> None:
        """Raise `~bgcube.errors.ConditionError` if the model cannot be evaluated for the run
        (a condition column missing, or its value not finite), without evaluating it."""
        for condition in (*self.model.conditions, *self.model.spatial_conditions):
            condition.raw(row)

    def background(self, row) -> FOVCube:
        """The run's rate cube, per ONTIME, 1/(MeV s sr), RADEC; ``BKG_GRP`` in its ``meta``
        is the run's night in the model's RUNS table (as make-models writes it), -1 for a
        run not in it."""
        cube = self.model.background(row)
        runs = self.model.runs
        if runs is not None and "NIGHT" in runs.colnames:
            hit = np.flatnonzero(np.asarray(runs["OBS_ID"]) == int(row["OBS_ID"]))
            if hit.size:
                cube.meta["BKG_GRP"] = int(runs["NIGHT"][hit[0]])
        return cube


#: The files that say a folder holds a joint model, and group models.
JOINT_MODEL_NAME, GROUPS_NAME = "bg_joint_model.fits.gz", "bg_observation_groups.ecsv"

LOADERS: list = [
    (JOINT_MODEL_NAME, JointModelSource.read),
    (GROUPS_NAME, GroupModels.read),
]


def register_loader(filename, loader) -> None:
    """Add a kind of model folder: ``loader(modeldir)`` when ``modeldir/filename`` exists.

    Registered loaders are tried before the built-in ones (latest first).
    """
    LOADERS.insert(0, (str(filename), loader))


def load_model_source(modeldir) -> ModelSource:
    """The model source of a model folder (see the module docstring).

    Raises
    ------
    DataNotFoundError
        The folder does not exist, is a file, or holds no known model file.
    FileFormatError
        The folder holds both a joint model and group models (two builds'
        outputs: which one is meant cannot be told).
    """
    folder = Path(modeldir)
    known = " or ".join(name for name, _ in LOADERS)
    if folder.is_file():
        raise DataNotFoundError(
            f"model folder {str(folder)!r} is a file: give the folder make-models wrote, "
            f"the one holding {known}"
        )
    if not folder.is_dir():
        raise DataNotFoundError(f"model folder {str(folder)!r} does not exist")
    kinds = [name for name in (JOINT_MODEL_NAME, GROUPS_NAME) if (folder / name).is_file()]
    if len(kinds) > 1:
        raise FileFormatError(
            f"model folder {str(folder)!r} holds both a joint model ({kinds[0]}) and group "
            f"models ({kinds[1]}), the outputs of two builds: remove the one not wanted, or "
            "rebuild into the folder with make-models --overwrite (which removes the other "
            "build's files)"
        )
    for filename, loader in LOADERS:
        if (folder / filename).is_file():
            return loader(folder)
    raise DataNotFoundError(
        f"model folder {str(folder)!r} holds none of the model files bgcube knows ({known}); "
        "make it with bgcube make-models"
    )

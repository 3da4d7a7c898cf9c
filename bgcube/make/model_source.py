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
observation table and the per-group cube files) and gives a run the group
models interpolated linearly in cos(zenith)
(`bgcube.make.zenith_interpolation.interpolate_cos_zenith`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import astropy.units as u
import numpy as np

from ..binning import ENERGY_THRESHOLD_COLUMNS
from ..cube import FOVCube
from ..errors import DataNotFoundError, FileFormatError
from ..io.fits import read_fits_table
from ..model import FOVCubeBackgroundModel
from .grouping import ObservationGroups
from .per_observation import cos_zenith_weights, group_cos_zenith, resample_rate

__all__ = [
    "ModelSource",
    "Validity",
    "GroupModels",
    "JointModelSource",
    "LOADERS",
    "register_loader",
    "load_model_source",
    "row_value",
    "read_group_models",
    "zenith_interpolation_weights",
]

#: Observation-index columns whose range of a model's runs defines its validity
#: (zenith, optical efficiency, energy threshold), where the index has them.
VALIDITY_COLUMNS = ("ZEN_PNT", "MUONEFF", *ENERGY_THRESHOLD_COLUMNS)


def row_value(row, name) -> float:
    """A run's value of an obs-index column as a float in the column's unit (NaN if absent).

    ``ZEN_PNT`` falls back to ``90 - ALT_PNT``.
    """
    names = list(row.colnames) if hasattr(row, "colnames") else list(row.keys())
    if name not in names:
        if name == "ZEN_PNT" and "ALT_PNT" in names:
            return 90.0 - row_value(row, "ALT_PNT")
        return float("nan")
    value = row[name]
    if np.ma.is_masked(value):
        return float("nan")
    try:
        return float(u.Quantity(value).value if isinstance(value, u.Quantity) else value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class Validity:
    """Closed ranges of observation-index columns a model is valid in.

    Parameters
    ----------
    ranges : dict of str to (float, float)
        Column name -> (lowest, highest) value, in the column's unit.
    """

    ranges: dict = field(default_factory=dict)

    @classmethod
    def from_runs(cls, obs_table, columns=VALIDITY_COLUMNS) -> Validity:
        """The ranges spanned by a model's runs (columns they lack are left out)."""
        ranges = {}
        for name in columns:
            values = np.array([row_value(row, name) for row in obs_table])
            values = values[np.isfinite(values)]
            if values.size:
                ranges[name] = (float(values.min()), float(values.max()))
        return cls(ranges)

    def reasons(self, row) -> list[str]:
        """Why a run is outside, one text per column (empty when inside or unknown)."""
        out = []
        for name, (lo, hi) in self.ranges.items():
            value = row_value(row, name)
            if np.isfinite(value) and not (lo <= value <= hi):
                out.append(f"{name} = {value:.4g} outside the model's range [{lo:.4g}, {hi:.4g}]")
        return out


@runtime_checkable
class ModelSource(Protocol):
    """What a loaded model folder offers (see the module docstring)."""

    validity: Validity

    def background(self, row) -> FOVCube:
        """The rate cube of the run with this observation-index row."""
        ...


def read_group_models(modeldir, model_path, read_model):
    """The per-group models of a make-models folder, with the cos(zenith) of their runs.

    Parameters
    ----------
    modeldir : str or path
        A ``make-models --model groups`` folder.
    model_path : callable
        ``model_path(folder, group_id) -> Path`` of a group's model file.
    read_model : callable
        ``read_model(path) -> model``.

    Returns
    -------
    models : list
        One per group with a model file and runs; of groups whose run-time
        weighted mean cos(zenith) coincide (within 1e-12), the one with the
        lowest id (the interpolation in cos(zenith) needs distinct nodes).
    cos_zenith : `~numpy.ndarray`
        Each model's mean cos(zenith) (`group_cos_zenith`).
    group_ids : list of int
    validity : Validity
        Of all runs of the folder's grouped observation table.

    Raises
    ------
    DataNotFoundError
        The folder lacks the group files.
    FileFormatError
        A group file cannot be read, or the grouped table has no GROUP_ID.
    """
    from .pipeline import OUTPUT_NAMES

    folder = Path(modeldir)
    groups_file = folder / OUTPUT_NAMES["groups"]
    grouped_file = folder / OUTPUT_NAMES["grouped"]
    for path in (groups_file, grouped_file):
        if not path.is_file():
            raise DataNotFoundError(f"model folder {str(folder)!r} has no {path.name}")
    groups = ObservationGroups.read(groups_file)
    grouped = read_fits_table(grouped_file, 1, "grouped observation table")
    if "GROUP_ID" not in grouped.colnames:
        raise FileFormatError("no GROUP_ID column", filename=grouped_file)
    models, nodes, ids = [], [], []
    for gid in groups.group_ids:
        path = model_path(folder, int(gid))
        runs = grouped[np.asarray(grouped["GROUP_ID"]) == gid]
        if path.is_file() and len(runs):
            models.append(read_model(path))
            nodes.append(group_cos_zenith(runs))
            ids.append(int(gid))
    nodes, keep = np.asarray(nodes, dtype=np.float64), []
    for i in np.argsort(ids, kind="stable"):  # equal centres: keep the lowest id
        if not np.any(np.isclose(nodes[keep], nodes[i], rtol=0, atol=1e-12)):
            keep.append(int(i))
    keep = sorted(keep)
    return (
        [models[i] for i in keep],
        nodes[keep],
        [ids[i] for i in keep],
        Validity.from_runs(grouped),
    )


def zenith_interpolation_weights(row, cos_zenith):
    """The group nearest a run in cos(zenith) and the weights of the interpolation.

    Parameters
    ----------
    row : `~astropy.table.Row` or mapping
        The run's observation-index row (ZEN_PNT or ALT_PNT).
    cos_zenith : `~numpy.ndarray`
        The groups' distinct cos(zenith) nodes.

    Returns
    -------
    nearest : int
        Index of the group whose node is nearest.
    weights : list of (int, float)
        ``(group index, weight)`` of the linear interpolation in cos(zenith),
        clamped to the outermost node (`cos_zenith_weights`).

    Raises
    ------
    FileFormatError
        If the row has no zenith angle.
    """
    zenith = row_value(row, "ZEN_PNT")
    if not np.isfinite(zenith):
        raise FileFormatError("the observation-index row has no ZEN_PNT or ALT_PNT value")
    cos_zen = float(np.cos(np.radians(zenith)))
    nearest = int(np.argmin(np.abs(cos_zenith - cos_zen)))
    return nearest, list(cos_zenith_weights(cos_zenith, cos_zen))


class GroupModels:
    """The group models written by ``bgcube make-models``, interpolated in cos(zenith).

    Parameters
    ----------
    cubes : list of `~bgcube.FOVCube`
        One rate cube per group.
    cos_zenith : sequence of float
        Each group's centre: the time-weighted mean cos(zenith) of its runs.
    validity : Validity
        The conditions of the model's runs.
    group_ids : sequence of int, optional
    """

    def __init__(self, cubes, cos_zenith, validity, group_ids=None):
        self.cubes = list(cubes)
        self.cos_zenith = np.asarray(cos_zenith, dtype=np.float64)
        self.validity = validity
        self.group_ids = list(range(len(self.cubes))) if group_ids is None else list(group_ids)
        self._resampled = {}

    def __repr__(self):
        return f"GroupModels(n_groups={len(self.cubes)}, validity={self.validity.ranges})"

    @classmethod
    def read(cls, modeldir) -> GroupModels:
        """Read a make-models output folder.

        Raises
        ------
        DataNotFoundError
            A file make-models writes is missing.
        FileFormatError
            A file cannot be read, or no group has a model file.
        """
        from .pipeline import OUTPUT_NAMES

        def read_cube(path):
            model = FOVCubeBackgroundModel.read(path)
            cube = model.background_cube.to_backend("numpy")
            cube.meta.setdefault("BKG_TIME", model.time_convention)
            cube.meta.setdefault("FOVALIGN", "RADEC")
            return cube

        def model_path(folder, group_id):
            return folder / OUTPUT_NAMES["model_table"].format(group_id=group_id)

        cubes, nodes, ids, validity = read_group_models(modeldir, model_path, read_cube)
        if not cubes:
            raise FileFormatError(
                f"no group model file ({OUTPUT_NAMES['model_table']}) found", filename=modeldir
            )
        aligns = {str(c.meta.get("FOVALIGN", "RADEC")).upper() for c in cubes}
        if aligns != {"RADEC"}:
            raise FileFormatError(
                f"group models with FOVALIGN {sorted(aligns)}: only RADEC models can be applied "
                "to runs (an ALTAZ model needs a rotation per run)",
                filename=modeldir,
            )
        return cls(cubes, nodes, validity, ids)

    def check(self, row) -> None:
        """Raise `~bgcube.errors.FileFormatError` if the run has no zenith angle (no cube is made)."""
        zenith_interpolation_weights(row, self.cos_zenith)

    def background(self, row) -> FOVCube:
        """The group models interpolated linearly in the run's cos(zenith).

        On the binning of the group whose centre is nearest; clamped to the
        outermost group beyond the range of the centres.
        """
        k, weights = zenith_interpolation_weights(row, self.cos_zenith)
        weighted = []
        for i, w in weights:
            if (i, k) not in self._resampled:
                self._resampled[i, k] = resample_rate(self.cubes[i], self.cubes[k])
            cube = self._resampled[i, k]
            weighted.append(w * np.asarray(cube.data) * float(cube.unit.to(self.cubes[k].unit)))
        out = self._resampled[k, k].copy(data=np.asarray(sum(weighted), dtype=np.float64))
        out.meta.update(BKG_GRP=self.group_ids[k])
        return out


#: (file name, loader) pairs, tried in order by `load_model_source`.
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
        """The run's rate cube, per ONTIME, 1/(MeV s sr), RADEC."""
        return self.model.background(row)


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

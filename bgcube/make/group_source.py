"""Group model folders as model sources: each run gets what make-models gives its runs.

A ``make-models --model groups`` folder holds the group definitions
(``bg_observation_groups.ecsv``: zenith x azimuth boxes), the grouped
observation table (``bg_observation_table_grouped.fits.gz``: each run's
GROUP_ID) and one model file per group with runs. `read_group_folder` reads
them into a `GroupFolder`, whose `GroupFolder.weights` gives any run what
`bgcube.make.per_observation.per_observation_models` gives the runs of the
build:

* its own group: the box holding its zenith and azimuth (azimuth boxes wrap
  through north), as `~bgcube.make.grouping.ObservationGroups` assigns the
  runs of a build; a run beyond the zenith range of the boxes (outside the
  model's validity) takes the box nearest in zenith in its azimuth range;
* the models mixed on that group's binning: its own group's model alone
  (``'group'``), or the models of all groups interpolated linearly in
  cos(zenith) between the two centres bracketing the run (``'interpolate'``;
  a centre is the time-weighted mean cos(zenith) of a group's runs). The
  run's cos(zenith) and the centres are computed by the same functions as in
  the build, so that its runs get the same cube to the last bit.

Which of the two the build used is read from the folder
(`per_observation_method`). `GroupModels` is the model source of the 3D
group models; `bgcube.make.radial_models.RadialGroupModels` that of the
BKG_2D ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Row, Table

from ..cube import FOVCube
from ..data.store import zenith_of
from ..errors import ConditionError, DataNotFoundError, FileFormatError
from ..io.fits import read_fits_table
from ..model import FOVCubeBackgroundModel
from .grouping import ObservationGroups, _az_width, _azimuth_of
from .results import OUTPUT_NAMES
from .validity import Validity, row_value
from .zenith_interpolation import (
    _mix,
    cos_zenith_of,
    cos_zenith_weights,
    group_cos_zenith,
    resample_rate,
)

__all__ = [
    "PER_OBSERVATION_KEYWORD",
    "GroupFolder",
    "GroupModels",
    "per_observation_method",
    "read_group_folder",
]

#: Header keyword of the grouped observation table naming the build's per-run models
#: ('group', 'interpolate' or 'none').
PER_OBSERVATION_KEYWORD = "BGPEROBS"


@dataclass
class GroupFolder:
    """The groups and group models of a make-models folder (`read_group_folder`).

    Attributes
    ----------
    groups : `~bgcube.make.grouping.ObservationGroups`
        The zenith x azimuth boxes (``bg_observation_groups.ecsv``).
    models : dict of int to model
        Group id -> model, for each group with runs, in ascending id.
    cos_zenith : dict of int to float
        Group id -> centre: the time-weighted mean cos(zenith) of its runs.
    validity : `~bgcube.make.validity.Validity`
        Of all runs of the grouped observation table.
    method : {'interpolate', 'group'}
        How a run's model is made from the group models (see the module docstring).
    """

    groups: ObservationGroups
    models: dict
    cos_zenith: dict
    validity: Validity
    method: str = "interpolate"

    def own_group(self, row) -> int:
        """The id of the group a run belongs to, as make-models groups its runs.

        Parameters
        ----------
        row : `~astropy.table.Row` or mapping
            The run's observation-index row (ZEN_PNT or ALT_PNT in deg;
            AZ_PNT in deg where the groups split the azimuth).

        Returns
        -------
        group_id : int

        Raises
        ------
        FileFormatError
            The row has no zenith angle.
        ConditionError
            It has no azimuth and the groups split the azimuth, or its group
            has no model (no run of the build lay in it).
        """
        if not np.isfinite(row_value(row, "ZEN_PNT")):
            raise FileFormatError("the observation-index row has no ZEN_PNT or ALT_PNT value")
        table = _one_row_table(row)
        zenith = zenith_of(table)
        groups = self.groups
        width = _az_width(groups.az_min, groups.az_max)
        azimuth = np.zeros(1)  # where every box is the full circle, any azimuth does
        if np.isfinite(row_value(row, "AZ_PNT")):
            azimuth = _azimuth_of(table)
        elif not np.all(width == 360.0):
            raise ConditionError("no AZ_PNT value, and the model's groups split the azimuth")
        gid = int(groups.group_id_of(zenith, azimuth)[0])
        if gid < 0:  # beyond the zenith range of the boxes: the nearest in zenith, same azimuth
            in_azimuth = np.mod(azimuth[0] - groups.az_min, 360.0) < width
            distance = np.maximum(groups.zen_min - zenith[0], zenith[0] - groups.zen_max)
            distance = np.where(in_azimuth, distance, np.inf)
            gid = int(groups.group_ids[int(np.argmin(distance))])
        if gid not in self.models:
            k = groups.list_of_groups.index(gid)
            raise ConditionError(
                f"its group {gid} (zenith {groups.zen_min[k]:g}-{groups.zen_max[k]:g} deg, "
                f"azimuth {groups.az_min[k]:g}-{groups.az_max[k]:g} deg) has no model: no run "
                "of the model's build lay in it"
            )
        return gid

    def weights(self, row):
        """A run's own group and the weights of the group models mixed for it.

        Returns
        -------
        group_id : int
            The run's own group (`own_group`): the binning of its model.
        weights : list of (int, float)
            (group id, weight) pairs, weights summing to 1: the own group
            alone (``method='group'``), else the linear interpolation in
            cos(zenith) between the centres (`cos_zenith_weights`), clamped
            to the outermost ones.
        """
        gid = self.own_group(row)
        if self.method == "group":
            return gid, [(gid, 1.0)]
        ids = _distinct_centres(self.cos_zenith)
        cos_zen = float(cos_zenith_of(_one_row_table(row))[0])
        nodes = [self.cos_zenith[i] for i in ids]
        return gid, [(ids[i], w) for i, w in cos_zenith_weights(nodes, cos_zen)]


def _distinct_centres(cos_zenith):
    """The group ids of distinct centres (of equal ones within 1e-12, the lowest id)."""
    keep = []
    for gid in sorted(cos_zenith):
        if not any(abs(cos_zenith[k] - cos_zenith[gid]) <= 1e-12 for k in keep):
            keep.append(gid)
    return keep


def _one_row_table(row) -> Table:
    """A run's observation-index row as a one-row table (values keep their column types)."""
    if isinstance(row, Row):
        return row.table[row.index : row.index + 1]
    names = [n for n in ("ZEN_PNT", "ALT_PNT", "AZ_PNT", "ONTIME", "LIVETIME") if n in row]
    return Table({n: np.atleast_1d(row[n]) for n in names})


def per_observation_method(folder, grouped_meta) -> str:
    """The per-run models of a group build: 'group' or 'interpolate'.

    From the grouped observation table's header (`PER_OBSERVATION_KEYWORD`),
    else from the folder's ``bgcube-config.yaml`` (folders written before the
    keyword); 'interpolate' for a build without per-run models or a folder
    that says nothing.

    Parameters
    ----------
    folder : str or path
        The model folder.
    grouped_meta : dict
        Header of its grouped observation table.

    Returns
    -------
    method : {'group', 'interpolate'}
    """
    method = str(grouped_meta.get(PER_OBSERVATION_KEYWORD, "")).strip().lower()
    if not method:
        from .config import CONFIG_NAME, BuildConfig

        path = Path(folder) / CONFIG_NAME
        if path.is_file():
            config = BuildConfig.read(path)
            method = str(config.per_observation or "none")
            if method == "none" and (config.fit_norm or config.efficiency_column is not None):
                method = "group"
    return "group" if method == "group" else "interpolate"


def read_group_folder(modeldir, model_path, read_model) -> GroupFolder:
    """The groups and group models of a make-models folder.

    Parameters
    ----------
    modeldir : str or path
        A ``make-models --model groups`` folder.
    model_path : callable
        ``model_path(folder, group_id) -> Path`` of a group's model file.
    read_model : callable
        ``read_model(path) -> model``; the model's ``meta['BKG_TIME']``
        (default 'ONTIME') names the time column of the groups' centres.

    Returns
    -------
    folder : GroupFolder

    Raises
    ------
    DataNotFoundError
        The folder lacks the group files, or the model file of a group with
        runs (naming it).
    FileFormatError
        A group file cannot be read, or the grouped table has no GROUP_ID.
    """
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
    group_of_run = np.asarray(grouped["GROUP_ID"])
    runs = {int(g): grouped[group_of_run == g] for g in groups.group_ids}
    runs = {g: rows for g, rows in sorted(runs.items()) if len(rows)}
    models = {}
    for gid, rows in runs.items():
        path = model_path(folder, gid)
        if not path.is_file():
            raise DataNotFoundError(
                f"model folder {str(folder)!r} has no {path.name}, the model of group {gid} "
                f"({len(rows)} run(s) in {grouped_file.name}, listed in {groups_file.name})"
            )
        models[gid] = read_model(path)
    time_convention = str(
        getattr(next(iter(models.values()), None), "meta", {}).get("BKG_TIME", "ONTIME")
    ).upper()
    time_column = time_convention if time_convention in grouped.colnames else "ONTIME"
    centres = {g: group_cos_zenith(rows, time_column=time_column) for g, rows in runs.items()}
    return GroupFolder(
        groups,
        models,
        centres,
        Validity.from_runs(grouped),
        per_observation_method(folder, grouped.meta),
    )


class GroupModels:
    """The group models written by ``bgcube make-models``, as a model source.

    A run's model is its own group's model or the group models interpolated
    in cos(zenith), as the build made the models of its runs (see the module
    docstring), on the binning of its own group.

    Parameters
    ----------
    folder : GroupFolder
        The groups, with `~bgcube.FOVCube` rate cubes as models.
    """

    def __init__(self, folder: GroupFolder):
        self.folder = folder
        self.validity = folder.validity
        self._resampled = {}

    @property
    def group_ids(self) -> list[int]:
        """The ids of the groups with a model."""
        return list(self.folder.models)

    @property
    def cubes(self) -> list[FOVCube]:
        """The groups' rate cubes, in the order of `group_ids`."""
        return list(self.folder.models.values())

    @property
    def cos_zenith(self) -> np.ndarray:
        """The groups' centres in cos(zenith), in the order of `group_ids`."""
        return np.array([self.folder.cos_zenith[g] for g in self.group_ids])

    @property
    def method(self) -> str:
        """'group' or 'interpolate' (the build's per-run models)."""
        return self.folder.method

    def __repr__(self):
        return (
            f"GroupModels(n_groups={len(self.group_ids)}, method={self.method!r}, "
            f"validity={self.validity.ranges})"
        )

    @classmethod
    def read(cls, modeldir) -> GroupModels:
        """Read a make-models output folder.

        Raises
        ------
        DataNotFoundError
            A file make-models writes is missing (the model of a group with runs included).
        FileFormatError
            A file cannot be read, or no group has runs, or a model is not RADEC.
        """

        def read_cube(path):
            model = FOVCubeBackgroundModel.read(path)
            cube = model.background_cube.to_backend("numpy")
            cube.meta.setdefault("BKG_TIME", model.time_convention)
            cube.meta.setdefault("FOVALIGN", "RADEC")
            return cube

        def model_path(folder, group_id):
            return folder / OUTPUT_NAMES["model_table"].format(group_id=group_id)

        folder = read_group_folder(modeldir, model_path, read_cube)
        if not folder.models:
            raise FileFormatError(
                f"no run in {OUTPUT_NAMES['grouped']}: no group has a model", filename=modeldir
            )
        aligns = {str(c.meta.get("FOVALIGN", "RADEC")).upper() for c in folder.models.values()}
        if aligns != {"RADEC"}:
            raise FileFormatError(
                f"group models with FOVALIGN {sorted(aligns)}: only RADEC models can be applied "
                "to runs (an ALTAZ model needs a rotation per run)",
                filename=modeldir,
            )
        return cls(folder)

    def check(self, row) -> None:
        """Raise as `GroupFolder.own_group` for a run that cannot take the models (no cube is made)."""
        self.folder.own_group(row)

    def background(self, row) -> FOVCube:
        """The run's rate cube: its group's model, or the models interpolated in cos(zenith).

        On the binning of the run's own group, ``meta['BKG_GRP']`` its id.
        """
        gid, weights = self.folder.weights(row)
        for i, _ in weights:
            if (i, gid) not in self._resampled:
                models = self.folder.models
                self._resampled[i, gid] = resample_rate(models[i], models[gid])
        out = _mix([(w, self._resampled[i, gid]) for i, w in weights])
        out.meta.update(BKG_GRP=gid)
        return out

"""Apply background models to the runs of a GADF data set: ``bgcube apply-models``.

`apply_models` (MODELDIR, INDIR, OUTDIR) loads the models of MODELDIR as a
model source (`bgcube.make.model_source`: two members, ``background(row)``
giving a run's rate cube from its observation-index row and ``validity``,
the range of conditions of the model's runs; the loader is picked by the
files in MODELDIR, and new kinds of models plug in with
`~bgcube.make.model_source.register_loader`). For every selected run of INDIR
(`bgcube.make.selection`) inside the validity range it writes, in OUTDIR,

* ``bkg/bkg_obs_<OBS_ID>.fits.gz``: the run's BKG_3D, a rate per ONTIME (what
  Gammapy multiplies by), stored so that Gammapy evaluates it in the sky as
  bgcube does (`bgcube.make.gammapy_alignment`: mirrored and declared
  REVERSE_LON_RADEC for H.E.S.S. SASH runs);
* ``hdu-index.fits.gz``: these runs' input HDUs (events, GTI, IRFs; their
  old ``bkg`` rows dropped) and the new ``bkg`` rows; the input files are
  referenced, copied or linked by the rule of `bgcube.make.output_paths`;
* ``obs-index.fits.gz``: these runs' rows of the input observation index.

so that ``gammapy.data.DataStore.from_dir(OUTDIR)`` gives these runs with
the new background. A run outside the model's validity range gets the model
extrapolated: it is written, flagged (its file says ``BKG_EXTR = T``;
`ApplyResult.extrapolated`), or with ``extrapolate=False`` reported and left
out (`ApplyResult.left_out`), the rule make-models follows for the runs it
builds from (`bgcube.make.extrapolation`). Nothing under INDIR or
MODELDIR is written. With ``overwrite=True``, the files an earlier bgcube
build wrote in OUTDIR and this one does not are removed once all are written
(`bgcube.make.earlier_outputs`; no other file of OUTDIR is touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

from ..binning import EFFECTIVE_AREA_COLUMN
from ..data.irf import with_effective_area
from ..data.store import HDU_INDEX, OBS_INDEX, DataStore
from ..errors import BgcubeError, ConditionError, ObservationError
from ..io.atomic import check_writable
from ..io.files import write_table
from ..progress import progress_bar
from ..radial import RadialBackground
from .earlier_outputs import EarlierOutputs
from .extrapolation import EXTRAPOLATED_KEYWORD, flag_extrapolated
from .gammapy_alignment import events_forced_alignment
from .gammapy_index import (
    BKG_HDU_NAME,
    BKG_SUBDIR,
    bkg_file_name,
    observation_bkg_cube,
    write_cube_files,
)
from .gammapy_index import _ontime_scale as ontime_scale
from .guard import guarded_build
from .model_source import load_model_source, row_value
from .output_paths import check_transfers, input_hdu_rows, transfer_input_files
from .results import warn_notes

if TYPE_CHECKING:
    from .._types import PathLike
from .per_observation import PerObservationModel
from .radial_models import MODEL_TYPES, RadialGroupModels
from .selection import RunSelection

__all__ = ["apply_models", "ApplyResult"]


@dataclass
class ApplyResult:
    """What `apply_models` did."""

    #: OBS_IDs written (with a background file and index rows).
    applied: list = field(default_factory=list)
    #: (OBS_ID, reason) of the selected runs left out.
    left_out: list = field(default_factory=list)
    #: OBS_IDs written although outside the model's range (``extrapolate=True``, the default).
    extrapolated: list = field(default_factory=list)
    #: OBS_IDs left out only for being outside the model's range (``extrapolate=False``).
    outside: list = field(default_factory=list)
    #: OBS_ID -> why it is outside the model's range, for the runs of ``extrapolated``
    #: and ``outside``.
    outside_reasons: dict = field(default_factory=dict)
    #: Files written.
    files: list = field(default_factory=list)
    #: The model source used.
    source: object = None
    #: Files of an earlier build in OUTDIR that this one did not write, removed after it
    #: (``overwrite=True``; `bgcube.make.earlier_outputs`).
    removed: list = field(default_factory=list)
    #: Notes for the report.
    messages: list = field(default_factory=list)


def _check_not_inside(outdir, folder, what):
    out, inp = Path(outdir).resolve(), Path(folder).resolve()
    if out == inp or inp in out.parents:
        raise BgcubeError(
            f"output folder {str(outdir)!r} is inside the {what} {str(folder)!r}; bgcube never "
            "writes under an input folder: choose another OUTDIR"
        )


@guarded_build
def apply_models(
    modeldir: PathLike,
    indir: PathLike | DataStore,
    outdir: PathLike,
    *,
    obs_ids: Sequence[int] | str | None = None,
    exclude_obs_ids: Sequence[int] | str | None = None,
    select: str | None = None,
    extrapolate: bool = True,
    input_paths: str = "relative",
    overwrite: bool = False,
    fail_fast: bool = False,
    model_type: str = "3d",
    source: Any = None,
    progress: bool | None = None,
) -> ApplyResult:
    """Write each selected run's background from a model folder, as a Gammapy data store.

    Parameters
    ----------
    modeldir : str or path
        Model folder (as written by ``bgcube make-models``; see
        `bgcube.make.model_source` for the kinds known).
    indir : str or path
        GADF data set with ``hdu-index.fits.gz`` and ``obs-index.fits.gz``.
    outdir : str or path
        Output folder (created if missing; not inside INDIR or MODELDIR).
    obs_ids, exclude_obs_ids, select
        Run selection, see `bgcube.make.selection.RunSelection`.
    extrapolate : bool
        Write the runs outside the model's validity range too, flagged
        ``BKG_EXTR = T`` and listed in ``extrapolated`` (default); False
        leaves them out (listed in ``left_out`` and ``outside``). The rule of
        ``make_models`` (`bgcube.make.extrapolation`).
    input_paths : {'relative', 'absolute', 'copy', 'link'}
        How the output's hdu-index reaches the input files
        (`bgcube.make.output_paths`; 'copy' makes a self-contained folder).
    overwrite : bool
        Replace existing output files (checked for every file before any is
        written) and, once all are written, remove the files of an earlier
        bgcube build in OUTDIR that this one does not write
        (`bgcube.make.earlier_outputs`).
    fail_fast : bool
        Raise on a run whose events or effective area cannot be read (default:
        report it, leave it out).
    model_type : {'3d', '2d'}
        '2d': apply the radially symmetric BKG_2D group models
        (`bgcube.make.radial_models`, from make-models ``model_type='2d'``)
        and write per-run BKG_2D files.
    source : ModelSource, optional
        An already loaded model source (then ``modeldir`` is only recorded).
    progress : bool, optional
        Progress bars over the runs (default: when stderr is a terminal).

    Returns
    -------
    result : ApplyResult

    Raises
    ------
    DataNotFoundError
        MODELDIR or INDIR (or their files) missing.
    ObservationError
        No run selected, or none of the selected runs can be written (the
        message gives each run's reason).
    OutputExistsError
        An output file exists and ``overwrite`` is false.
    BgcubeError
        OUTDIR inside INDIR or MODELDIR.
    """
    outdir = Path(outdir)
    _check_not_inside(outdir, indir, "input data folder")
    if source is None:
        _check_not_inside(outdir, modeldir, "model folder")
        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        source = (
            RadialGroupModels.read(modeldir) if model_type == "2d" else load_model_source(modeldir)
        )
    selection = RunSelection(obs_ids=obs_ids, exclude_obs_ids=exclude_obs_ids, select=select)
    store = selection.apply(DataStore.from_dir(indir))
    result = ApplyResult(source=source)

    table = store.obs_table
    if EFFECTIVE_AREA_COLUMN in getattr(source, "condition_columns", ()):
        unread = None if fail_fast else []  # runs whose effective area cannot be read
        table = with_effective_area(store, table, progress=progress, failed=unread)
        if unread:
            result.left_out += unread
            table = table[~np.isin(np.asarray(table["OBS_ID"]), [i for i, _ in unread])]
    # first the runs that take the models (nothing is evaluated or held), then each run's
    # cube made and written one at a time: memory holds a few cubes whatever the number of runs
    plan = _plan(source, store, table, result, extrapolate=extrapolate, fail_fast=fail_fast)
    if not plan:
        why = "; ".join(f"OBS_ID {i}: {r}" for i, r in result.left_out[:10])
        more = f" (and {len(result.left_out) - 10} more)" if len(result.left_out) > 10 else ""
        raise ObservationError(
            f"no selected run can take these models: {why}{more}"
            + (
                ""
                if extrapolate
                else (
                    "; without --no-extrapolate (extrapolate=False) the runs outside the "
                    f"model's range are written, flagged {EXTRAPOLATED_KEYWORD} = T"
                )
            )
        )
    result.applied = [obs_id for obs_id, *_ in plan]
    result.extrapolated = [obs_id for obs_id, _, _, outside in plan if outside]

    columns, transfers = input_hdu_rows(store, result.applied, outdir, input_paths)
    bkg_files = [outdir / BKG_SUBDIR / bkg_file_name(i) for i in result.applied]
    planned = [outdir / HDU_INDEX, outdir / OBS_INDEX, *bkg_files]
    for path in planned:
        check_writable(path, overwrite)
    check_transfers(transfers, overwrite)

    provenance = {
        "BGMODEL": str(Path(modeldir).resolve()),
        "BGINDIR": str(Path(indir).resolve()),
        "BGPATHS": input_paths,
        **selection.provenance(),
    }
    earlier = EarlierOutputs(outdir, overwrite, config=True)  # removed once all is written
    (outdir / BKG_SUBDIR).mkdir(parents=True, exist_ok=True)
    result.files += transfer_input_files(transfers, input_paths, overwrite)
    classes = {}  # OBS_ID -> HDU_CLASS, as each cube is made
    cubes = (
        _run_cube(source, store, table[k], forced, outside, classes)
        for _, k, forced, outside in plan
    )
    write_cube_files(
        progress_bar(cubes, len(plan), "per-run files", progress), bkg_files, overwrite
    )
    for obs_id in result.applied:
        columns["OBS_ID"].append(obs_id)
        columns["HDU_TYPE"].append("bkg")
        columns["HDU_CLASS"].append(classes[obs_id])
        columns["FILE_DIR"].append(BKG_SUBDIR)
        columns["FILE_NAME"].append(bkg_file_name(obs_id))
        columns["HDU_NAME"].append(BKG_HDU_NAME)
    hdu_table = Table({k: np.array(v) for k, v in columns.items()})
    hdu_table = hdu_table[np.lexsort((hdu_table["HDU_TYPE"], hdu_table["OBS_ID"]))]
    hdu_table.meta.update(
        {k: v for k, v in store.hdu_table.meta.items() if k.upper() not in ("BASE_DIR", "EXTNAME")}
    )
    hdu_table.meta.update(provenance, EXTNAME="HDU_INDEX")
    obs_table = store.obs_table[np.isin(store.obs_ids, result.applied)]
    obs_table.meta = {k: v for k, v in store.obs_table.meta.items() if k.upper() != "BASE_DIR"}
    obs_table.meta.update(provenance)
    obs_table.meta.setdefault("EXTNAME", "OBS_INDEX")
    write_table(hdu_table, planned[0], overwrite)
    write_table(obs_table, planned[1], overwrite)
    result.files += planned
    result.removed, message = earlier.remove(result.files)
    result.messages += [message] if message else []
    warn_notes(result.messages, stacklevel=3)  # the caller of guarded_build's wrapper
    return result


def _plan(source, store, table, result, *, extrapolate, fail_fast):
    """``(OBS_ID, row, forced FOVALIGN, outside the validity)`` of each run that takes the
    models, in ascending OBS_ID; the others go to ``result.left_out`` with their reason.

    A run whose conditions the model cannot be evaluated at (`ConditionError`) is found by
    the source's ``check(row)`` where it has one (no cube is made), else by making its cube.
    """
    check = getattr(source, "check", None) or source.background
    plan = []
    for k, row in enumerate(table):
        obs_id = int(row["OBS_ID"])
        reasons = source.validity.reasons(row)
        if reasons:
            result.outside_reasons[obs_id] = "; ".join(reasons)
        if reasons and not extrapolate:
            result.left_out.append((obs_id, "; ".join(reasons)))
            result.outside.append(obs_id)
            continue
        try:
            forced = events_forced_alignment(store, obs_id)
            check(row)
        except (ObservationError, ConditionError) as exc:
            if fail_fast:
                raise
            result.left_out.append((obs_id, str(exc)))
            continue
        plan.append((obs_id, k, forced, bool(reasons)))
    return sorted(plan)


def _run_cube(source, store, row, forced, outside, classes):
    """The cube written for one run: per ONTIME, aligned for Gammapy (3D), or BKG_2D."""
    obs_id = int(row["OBS_ID"])
    cube = source.background(row)
    time_convention = str(cube.meta.get("BKG_TIME", "ONTIME")).upper()
    if isinstance(cube, RadialBackground):  # radially symmetric: no alignment to care for
        scale = ontime_scale(store.obs_table, obs_id, time_convention)
        cube = cube.copy(data=cube.data * scale)
        cube.meta.update(BKG_TIME="ONTIME", OBS_ID=obs_id)
        classes[obs_id] = "bkg_2d"
        return flag_extrapolated(cube) if outside else cube
    cube = cube.copy(data=cube.data)  # its own meta: BKG_GRP is written where make-models has it
    if outside:  # flagged before the run's keywords are added, as make-models does
        flag_extrapolated(cube)
    group_id = int(cube.meta.pop("BKG_GRP", -1))
    model = PerObservationModel(
        obs_id,
        group_id,
        float(np.cos(np.radians(row_value(row, "ZEN_PNT")))),
        cube.to_backend("numpy"),
        time_convention,
    )
    classes[obs_id] = "bkg_3d"
    return observation_bkg_cube(model, store.obs_table, forced)

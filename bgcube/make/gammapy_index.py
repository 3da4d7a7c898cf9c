"""Per-run BKG_3D files and an HDU index that points Gammapy's DataStore at them.

`write_observation_backgrounds` writes, in an output folder,

* ``bkg/bkg_obs_<OBS_ID>.fits.gz``: one GADF BKG_3D HDU (``BACKGROUND``)
  per run, the run's model (`bgcube.make.per_observation`) times its norm,
  as a rate per unit ONTIME (what Gammapy multiplies by when it predicts
  background; a LIVETIME model is scaled by the run's LIVETIME / ONTIME);
* ``hdu-index.fits.gz``: a copy of the input HDU index whose ``bkg`` rows
  of these runs point at the new files (rows are added for runs that had
  none); the input event, GTI and IRF HDUs are found by the path rule of
  `bgcube.make.output_paths` (relative to the output folder by default;
  absolute, copied or linked on request);
* ``obs-index.fits.gz``: a copy of the input observation index.

``gammapy.data.DataStore.from_dir(outdir)`` then reads ``obs.bkg`` from the
new models and ``obs.events`` etc. from the original files.

A run on which Gammapy forces ``REVERSE_LON_RADEC`` (H.E.S.S. SASH event
files) gets its model mirrored in DETX and declared so
(`bgcube.make.gammapy_alignment`), so that Gammapy predicts, in every sky
pixel, what bgcube predicts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..data.store import HDU_INDEX, OBS_INDEX
from ..errors import ObservationError
from ..io.atomic import check_writable
from ..io.bkg2d import bkg_2d_file_bytes
from ..io.files import write_fits_bytes, write_table
from ..io.lean_write import cube_file_bytes
from ..progress import progress_bar
from ..radial import RadialBackground
from .gammapy_alignment import check_alignment, events_forced_alignment, store_for_gammapy
from .output_paths import check_transfers, input_hdu_rows, transfer_input_files

__all__ = [
    "BKG_SUBDIR",
    "BKG_HDU_NAME",
    "bkg_file_name",
    "planned_files",
    "write_observation_backgrounds",
    "observation_bkg_cube",
    "write_cube_files",
]

#: Folder of the per-run files, inside the output folder.
BKG_SUBDIR = "bkg"
#: HDU name of the per-run BKG_3D table.
BKG_HDU_NAME = "BACKGROUND"


def bkg_file_name(obs_id) -> str:
    """File name of a run's background model, e.g. ``bkg_obs_023523.fits.gz``."""
    return f"bkg_obs_{int(obs_id):06d}.fits.gz"


def planned_files(outdir, obs_ids):
    """Every file `write_observation_backgrounds` writes for these runs."""
    outdir = Path(outdir)
    return [outdir / HDU_INDEX, outdir / OBS_INDEX] + [
        outdir / BKG_SUBDIR / bkg_file_name(i) for i in obs_ids
    ]


def _ontime_scale(obs_table, obs_id, time_convention):
    """Factor turning a rate per ``time_convention`` into a rate per ONTIME."""
    if time_convention == "ONTIME":
        return 1.0
    row = obs_table[np.nonzero(np.asarray(obs_table["OBS_ID"]) == int(obs_id))[0][0]]
    if "DEADC" in obs_table.colnames:
        return float(row["DEADC"])
    if "LIVETIME" in obs_table.colnames and "ONTIME" in obs_table.colnames:
        return float(u.Quantity(row["LIVETIME"], u.s) / u.Quantity(row["ONTIME"], u.s))
    raise ObservationError(
        f"OBS_ID {int(obs_id)}: a LIVETIME model needs DEADC or LIVETIME and ONTIME in the "
        "observation index to be written for Gammapy (which multiplies by ONTIME)"
    )


def observation_bkg_cube(model, obs_table, forced_alignment=None):
    """The BKG_3D cube written for one run: rate per ONTIME, norm applied.

    Parameters
    ----------
    model : `~bgcube.make.per_observation.PerObservationModel`
    obs_table : `~astropy.table.Table`
        Observation index (DEADC for LIVETIME models).
    forced_alignment : str, optional
        The FOVALIGN Gammapy forces on the run's background
        (`bgcube.make.gammapy_alignment.gammapy_forced_alignment`): the cube is
        stored mirrored and declared so.

    Returns
    -------
    cube : `~bgcube.FOVCube`
        Scheme ``bg_cube``; meta FOVALIGN, BKG_TIME='ONTIME', OBS_ID, BKG_NORM,
        BKG_GRP, and BKG_EFF (the run's optical efficiency) when the norm
        came from it.
    """
    factor = model.norm * _ontime_scale(obs_table, model.obs_id, model.time_convention)
    # a factor of 1 (a joint model's runs, an ONTIME model without norm) copies nothing
    cube = model.cube.copy(data=model.cube.data if factor == 1.0 else model.cube.data * factor)
    cube.meta.update(
        BKG_TIME="ONTIME",
        OBS_ID=int(model.obs_id),
        BKG_NORM=float(model.norm),
        BKG_GRP=int(model.group_id),
    )
    if np.isfinite(model.efficiency):  # the norm came from the run's optical efficiency
        cube.meta["BKG_EFF"] = float(model.efficiency)
    cube.meta.setdefault("FOVALIGN", "RADEC")
    return store_for_gammapy(cube, forced_alignment)


def _new_hdu_index(store, outdir, obs_ids, input_paths="relative"):
    """The input HDU index of the store's runs, FILE_DIR by the path rule, with new bkg rows.

    Returns the table and the (input file, destination) pairs to copy or link.
    """
    columns, transfers = input_hdu_rows(
        store, store.obs_ids.tolist(), outdir, input_paths, replaced=obs_ids
    )
    for obs_id in obs_ids:
        columns["OBS_ID"].append(int(obs_id))
        columns["HDU_TYPE"].append("bkg")
        columns["HDU_CLASS"].append("bkg_3d")
        columns["FILE_DIR"].append(BKG_SUBDIR)
        columns["FILE_NAME"].append(bkg_file_name(obs_id))
        columns["HDU_NAME"].append(BKG_HDU_NAME)
    table = Table({k: np.array(v) for k, v in columns.items()})
    table.meta.update(
        {k: v for k, v in store.hdu_table.meta.items() if k.upper() not in ("BASE_DIR", "EXTNAME")}
    )
    table.meta.update(
        EXTNAME="HDU_INDEX", BGPATHS=input_paths, BGINDIR=str(Path(store.base_dir).resolve())
    )
    order = np.lexsort((table["HDU_TYPE"], table["OBS_ID"]))
    return table[order], transfers


def write_observation_backgrounds(
    models, store, outdir, *, overwrite=False, input_paths="relative", progress=False
):
    """Write per-run BKG_3D files, a new HDU index and a copy of the observation index.

    Parameters
    ----------
    models : mapping of int to `~bgcube.make.per_observation.PerObservationModel`
        A dict, or a mapping that makes each model when asked (the cubes are
        made and written one at a time); such a mapping may say the
        FOVALIGN of all its cubes in an ``alignment`` attribute.
    store : `~bgcube.data.store.DataStore`
        The input data store (its HDU and observation indices are copied).
    outdir : str or path
        Output folder (created if missing).
    overwrite : bool
        Replace existing files (checked for every file before writing any).
    input_paths : {'relative', 'absolute', 'copy', 'link'}
        How the new HDU index reaches the input files (`bgcube.make.output_paths`).
    progress : bool, optional
        Show a progress bar over the runs' files (None: when stderr is a terminal).

    Returns
    -------
    files : list of `~pathlib.Path`
        The HDU index, the observation index and the per-run files.

    Raises
    ------
    OutputExistsError
        If a file exists and ``overwrite`` is false.
    """
    outdir = Path(outdir)
    obs_ids = sorted(int(i) for i in models)
    planned = planned_files(outdir, obs_ids)
    for path in planned:
        check_writable(path, overwrite)
    hdu_index, transfers = _new_hdu_index(store, outdir, obs_ids, input_paths)
    check_transfers(transfers, overwrite)
    forced = [events_forced_alignment(store, obs_id) for obs_id in obs_ids]
    for obs_id, f in zip(obs_ids, forced, strict=True):  # fails before any file is written
        check_alignment(_alignment(models, obs_id), f)
    cubes = (  # one at a time: memory holds a few cubes, whatever the number of runs
        observation_bkg_cube(models[obs_id], store.obs_table, f)
        for obs_id, f in zip(obs_ids, forced, strict=True)
    )
    (outdir / BKG_SUBDIR).mkdir(parents=True, exist_ok=True)
    bar = progress_bar(cubes, len(obs_ids), "per-run files", progress)
    write_cube_files(bar, planned[2:], overwrite)
    copied = transfer_input_files(transfers, input_paths, overwrite)
    write_table(hdu_index, planned[0], overwrite)
    obs_table = store.obs_table.copy()
    obs_table.meta = {k: v for k, v in obs_table.meta.items() if k.upper() != "BASE_DIR"}
    obs_table.meta.setdefault("EXTNAME", "OBS_INDEX")
    write_table(obs_table, planned[1], overwrite)
    return planned + copied


def _alignment(models, obs_id) -> str:
    """FOVALIGN of a run's model: the mapping's ``alignment``, else its cube's."""
    alignment = getattr(models, "alignment", None)
    if alignment is not None:
        return str(alignment)
    return str(models[obs_id].cube.meta.get("FOVALIGN", "RADEC"))


def write_cube_files(cubes, paths, overwrite):
    """Write cubes to files, one at a time: a few cubes in memory whatever their number.

    Each file's bytes are built here, in the calling thread: a
    `~bgcube.FOVCube`'s by `bgcube.io.lean_write.cube_file_bytes` (those
    astropy writes), a `~bgcube.radial.RadialBackground`'s by
    `bgcube.io.bkg2d.bkg_2d_file_bytes`. Two other threads compress and write
    the ones before (ISA-L and zlib release the GIL; one thread alone kept
    the others waiting on it: the 105 DR1 files in 0.53-0.74 s instead of
    0.68-0.88 s). The writing threads never build astropy tables: NumPy
    parses a vector column's format with `ast`, and on CPython 3.11 two
    threads parsing at once can fail with ``SystemError: AST constructor
    recursion depth mismatch``. The first error is raised once every file
    has been tried.

    Parameters
    ----------
    cubes : iterable of `~bgcube.FOVCube` or `~bgcube.radial.RadialBackground`
    paths : sequence of path
        One file name per cube (``.gz``: gzipped).
    overwrite : bool
        Replace existing files.
    """
    futures = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for cube, path in zip(cubes, paths, strict=True):
            if len(futures) >= 4:
                futures[-4].exception()  # wait: a few files' bytes in memory at most
            futures.append(pool.submit(write_fits_bytes, _file_bytes(cube), path, overwrite))
    for future in futures:
        future.result()


def _file_bytes(cube):
    """The uncompressed file bytes of a `~bgcube.FOVCube` or a `~bgcube.radial.RadialBackground`."""
    if isinstance(cube, RadialBackground):
        return bkg_2d_file_bytes(cube)
    return cube_file_bytes(cube)

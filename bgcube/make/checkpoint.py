"""Resumable builds: finished runs' partial cubes kept in OUTDIR/.bgcube-checkpoint/.

While `~bgcube.make.make_models` runs, every run whose partial cubes are
computed is saved (atomically, by a background thread so that
compressing and writing overlap the next run's reading) as
``runs/obs<OBS_ID>.npz``: its
counts and time cubes and what it added, under a key covering everything
the result depends on. A ``manifest.json`` records the settings of the
build. An interrupted build (Ctrl-C, a crash, a lost cluster) leaves the
folder behind; the same build started again with ``resume=True`` takes the
saved runs instead of reading them again. On resume

* a manifest made with another bgcube version, checkpoint format, time
  convention or alignment discards the whole checkpoint, with a message
  saying what differs;
* a run file whose key no longer matches (other binning, its index rows,
  its event file or the exclusion circles near it changed since) or that
  cannot be read is discarded and the run recomputed; the messages say how
  many, which and why.

A run's key (`Checkpoint.run_key`) covers what its partial cubes depend
on, and nothing of the other runs: its own rows of the observation and
HDU indexes, its files (real path, size and modification time), its
binning (in a group build, the group's: runs selected or left out that
change it change the key), alignment and time convention, and the
exclusion circles within its reach (the largest event offset or the
cube's, `~bgcube.data.exclusion_fraction.exclusion_reach`; exclusion
'auto' makes circles of the selected runs' targets). So a resumed build
with another run selection (``obs_ids``, ``exclude_obs_ids``, ``select``)
reuses the saved runs it still selects, e.g. after a ``fail_fast`` stop,
with the failed run left out; so does one that reaches the files by another
path or runs on Dask workers.

Runs that could not be read are not saved: they are tried again.
A successful build removes the folder (unless asked to keep it). So does a
build that fails with an error it would hit again (of the input, the
options or the fit, `worth_resuming`), together with the output files it
had created, so that the corrected build starts afresh without
``overwrite``; after an interruption or a failure of the system (a full
disk, an I/O error, memory) the folder stays, for ``resume``
(`Checkpoint.handling_errors`).

A run is saved compactly (`_compact`): its counts as float32 where that
is exact (whole counts below 2**24 a bin are), its time cube as one image
where it is the same in every energy bin (the time of a pixel does not
depend on the energy), about a quarter of the two float64 cubes.
Saving costs about as much as reading a small run, so a checkpoint that
will be removed holds its first `SAVE_AFTER_S` seconds of runs in memory
(`Checkpoint.save`): a build that finishes sooner saves none, and one
that stops (an error, Ctrl-C) saves them all before the error goes on
(`Checkpoint.wait`). Only a crash of the process itself within that
time loses them: a few seconds of work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import astropy.units as u
import numpy as np

from .. import __version__
from ..backend import to_numpy
from ..data.fill import ObservationFill
from ..errors import BgcubeError, OutputExistsError, RunFailedError
from ..io.atomic import atomic_output
from .partial import PartialCubes, RunTask, StoreFiles

__all__ = [
    "Checkpoint",
    "CHECKPOINT_DIR",
    "planned_outputs",
    "worth_resuming",
]

#: Name of the checkpoint folder inside the output folder.
CHECKPOINT_DIR = ".bgcube-checkpoint"
_MANIFEST = "manifest.json"
#: 3: a run's key of parts (its index rows, files, settings, the exclusion circles near
#: it); 2: counts stored as float32 where that is exact, a time cube the same in every
#: energy bin as one image (1: both float64 cubes).
_FORMAT = 3
#: Manifest entries that must match for any saved run to be reused.
_BUILD_KEYS = ("format", "bgcube", "time_convention", "alignment")
#: What each part of a run's key covers, as the message of a run recomputed names it.
_KEY_PARTS = {
    "index": "its rows of the input index changed",
    "files": "its event or GTI file changed",
    "settings": "other binning or settings",
    "exclusion": "other exclusion regions near it",
}

#: Saves queued for the background writer before `Checkpoint.save` waits
#: (bounds the memory held by cubes not yet written).
MAX_PENDING_SAVES = 4

#: Seconds after `Checkpoint.start` during which finished runs are held in
#: memory instead of saved (a checkpoint that will be removed only).
SAVE_AFTER_S = 5.0

#: Bytes of cubes held in memory at most before the held runs are saved.
MAX_HELD_BYTES = 64 * 2**20

log = logging.getLogger("bgcube.make")


def _run_rows(store):
    """A function giving the SHA-256 of one run's rows of the observation and HDU indexes."""
    tables = []
    for table in (store.obs_table, store.hdu_table):
        columns = [(name, np.ma.getdata(np.asarray(table[name]))) for name in table.colnames]
        ids = dict(columns).get("OBS_ID")
        tables.append((columns, None if ids is None else ids.astype(np.int64, copy=False)))

    def digest(obs_id):
        sha = hashlib.sha256()
        for columns, ids in tables:
            rows = np.flatnonzero(ids == int(obs_id)) if ids is not None else []
            for name, values in columns:
                picked = np.ascontiguousarray(values[rows])
                sha.update(f"{name}:{picked.dtype.str}:{picked.shape}".encode())
                sha.update(picked.tobytes())
        return sha.hexdigest()

    return digest


def planned_outputs(outdir) -> set[str]:
    """Names of the output files planned by the build whose checkpoint OUTDIR holds.

    Parameters
    ----------
    outdir : str or path
        The output folder.

    Returns
    -------
    names : set of str
        The file names (no folders) the checkpoint's manifest lists; empty
        when OUTDIR holds no checkpoint or its manifest cannot be read.
    """
    folder = Path(outdir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return set()
    outputs = _read_manifest(folder).get("outputs", ())
    return {str(name) for name in outputs} if isinstance(outputs, list) else set()


def _file_stamps(task: RunTask):
    """(resolved path, size, mtime_ns) of the run's event and GTI files; empty when unknown.

    The path is the file's real path (`os.path.realpath`): the same file
    reached through another spelling of the input folder (relative or
    absolute, through a symbolic link, from another working directory, as a
    Dask worker opens it) has the same stamp.
    """
    store = task.store.open() if isinstance(task.store, StoreFiles) else task.store
    stamps = []
    for hdu_type in ("events", "gti"):
        try:
            path, _ = store.hdu_location(task.obs_id, hdu_type)
            real = os.path.realpath(path)
            stat = os.stat(real)
        except (AttributeError, OSError, ValueError):  # no such row or file: no stamp
            continue
        stamps.append([real, stat.st_size, stat.st_mtime_ns])
    return stamps


def worth_resuming(exc: BaseException) -> bool:
    """Whether the same build, started again, may get past ``exc`` by resuming.

    True after an interruption (Ctrl-C), a failure of the system (a full
    disk, an I/O error, memory) or a ``fail_fast`` stop at a run that could
    not be used (`~bgcube.errors.RunFailedError`: the runs before it are
    kept, to resume once its file is repaired or the run left out); False after an error
    of the options, the conditions or the fit (any other exception), which
    the same build would hit again.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    worth : bool
    """
    if not isinstance(exc, Exception):  # KeyboardInterrupt, the process ending
        return True
    if isinstance(exc, RunFailedError):  # fail_fast at one run: repair it or leave it out, resume
        return True
    return isinstance(exc, OSError | MemoryError) and not isinstance(exc, BgcubeError)


class Checkpoint:
    """The checkpoint folder of one build.

    Use `Checkpoint.open`, then `start` once the build is sure to run.

    Attributes
    ----------
    folder : `~pathlib.Path`
    messages : list of str
        What was found, reused or discarded (also logged to ``bgcube.make`` at INFO
        level; the build returns them, and the command prints each once, as a note).
    resumed : bool
        Whether an earlier build's saved runs may be reused.
    previous_outputs : set of str
        With ``resume``: names of the files the interrupted build had planned.
    discarded : list of (int, str)
        OBS_ID and reason of each saved run that could not be reused.
    """

    def __init__(
        self, folder, manifest, *, resumed=False, previous_outputs=(), keep=True, store=None
    ):
        self.folder = Path(folder)
        self.keep = keep
        self.manifest = manifest
        self.resumed = resumed
        self.previous_outputs = set(previous_outputs)
        self.messages = []
        self.discarded = []
        # a run's rows of the index tables (not the whole index: other runs may be selected)
        self._rows = _run_rows(store) if store is not None else (lambda obs_id: "")
        self._row_digests = {}
        self._writer = None  # ThreadPoolExecutor of one thread, made at the first save
        self._pending = deque()
        self._held, self._held_bytes = [], 0  # finished runs not saved yet (see `save`)
        self._started = None
        self._new_paths = []  # the outputs and folders that did not exist at `open`

    @classmethod
    def open(cls, outdir, *, store, tasks, outputs, resume=False, overwrite=False, keep=True):
        """The checkpoint of a build, continuing an earlier one when asked and possible.

        Nothing is written until `start`.

        Parameters
        ----------
        outdir : path
            The build's output folder.
        store : `~bgcube.data.store.DataStore`
            The input (its index tables are checksummed).
        tasks : list of `~bgcube.make.partial.RunTask`
            The build's runs (their settings go in the manifest).
        outputs : list of path
            Files the build will write; a resumed build may replace those of
            them the interrupted build had planned.
        resume : bool
            Continue an earlier build's checkpoint if there is one.
        overwrite : bool
            Without ``resume``, discard an earlier checkpoint (else it is an error).
        keep : bool
            Whether the checkpoint may outlive a successful build (default);
            False lets `save` hold the first runs in memory.

        Raises
        ------
        OutputExistsError
            If OUTDIR holds a checkpoint and neither ``resume`` nor ``overwrite``.
        """
        folder = Path(outdir) / CHECKPOINT_DIR
        first = tasks[0] if tasks else None
        manifest = {
            "format": _FORMAT,
            "bgcube": __version__,
            "time_convention": first.time_convention if first else None,
            "alignment": first.alignment if first else None,
            "obs_ids": sorted(t.obs_id for t in tasks),
            "outputs": sorted(Path(p).name for p in outputs),
        }
        messages = []
        previous, previous_outputs = None, ()
        if folder.exists():
            if not resume and not overwrite:
                raise OutputExistsError(
                    f"{str(Path(outdir))!r} holds the checkpoint of an unfinished build "
                    f"({CHECKPOINT_DIR}); pass resume=True to continue it, or pass overwrite=True "
                    "to start afresh"
                )
            previous = _read_manifest(folder) if resume else None
            previous_outputs = (previous or {}).get("outputs", ())
            differs = _differences(previous, manifest)
            selection = _selection_change(previous, manifest)
            if differs:
                messages.append(
                    f"checkpoint in {str(folder)!r} discarded: made with a different "
                    f"{', '.join(differs)}"
                )
                previous = None
            elif not resume:
                messages.append(f"checkpoint of an earlier build in {str(folder)!r} discarded")
            if previous is None:
                shutil.rmtree(folder)
        elif resume:
            messages.append(f"no checkpoint in {str(Path(outdir))!r}: building from the start")
        checkpoint = cls(
            folder,
            manifest,
            resumed=previous is not None,
            previous_outputs=previous_outputs,
            keep=keep,
            store=store,
        )
        new = {Path(p) for p in outputs if not Path(p).exists()}
        new |= {p.parent for p in new if not p.parent.exists()}
        checkpoint._new_paths = sorted(new, key=lambda p: len(p.parts), reverse=True)
        if previous is not None:
            n_saved = len(list((folder / "runs").glob("obs*.npz")))
            messages.append(f"resuming from {str(folder)!r}: {n_saved} run(s) saved")
            if selection:
                messages.append(
                    f"{selection} since the interrupted build: the saved runs still selected "
                    "are reused"
                )
        for text in messages:
            checkpoint._say(text)
        return checkpoint

    def may_replace(self, path) -> bool:
        """Whether ``path`` is an output of the interrupted build ``resume`` continues.

        True even when that build's saved runs were discarded: resuming into
        OUTDIR replaces what the interrupted build wrote there.
        """
        return Path(path).name in self.previous_outputs

    def start(self):
        """Create the folder and write the manifest."""
        (self.folder / "runs").mkdir(parents=True, exist_ok=True)
        # files an earlier attempt may have written stay replaceable by the next one
        self.manifest["outputs"] = sorted(set(self.manifest["outputs"]) | self.previous_outputs)
        text = json.dumps(self.manifest, indent=1)
        with atomic_output(self.folder / _MANIFEST, overwrite=True) as tmp:
            tmp.write_text(text)
        self._started = time.monotonic()

    def _say(self, text):
        self.messages.append(text)
        log.info(text)

    def _path(self, obs_id) -> Path:
        return self.folder / "runs" / f"obs{int(obs_id)}.npz"

    def run_key(self, task: RunTask, reach=None) -> dict:
        """SHA-256 digests of everything a run's partial cubes depend on, by part.

        Parameters
        ----------
        task : `~bgcube.make.partial.RunTask`
        reach : sequence of float, optional
            ``(ra, dec, radius)``, deg: the exclusion circles within this
            circle are the only ones that change what the run adds
            (`~bgcube.data.fill.ObservationFill.exclusion_reach`); default:
            all of them count.

        Returns
        -------
        key : dict of str
            The digests of `_KEY_PARTS` (nothing of the other runs).
        """
        rows = self._row_digests.get(task.obs_id)
        if rows is None:
            rows = self._row_digests[task.obs_id] = self._rows(task.obs_id)
        if reach is None:
            circles = task.exclusion
        else:
            near = task.regions().near(*reach)
            circles = [[float(v) for v in a] for a in (near.ra, near.dec, near.radius)]
            circles = [list(c) for c in sorted(zip(*circles, strict=True))]
        parts = {
            "index": rows,
            "files": _file_stamps(task),
            "settings": [__version__, task.settings_digest(exclusion=False)],
            "exclusion": circles,
        }
        return {
            name: hashlib.sha256(json.dumps(value).encode()).hexdigest()
            for name, value in parts.items()
        }

    def save(self, task: RunTask, partial: PartialCubes):
        """Save a finished run's partial cubes (runs that failed are not saved).

        A checkpoint made with ``keep=False`` holds the runs finished in
        the first `SAVE_AFTER_S` seconds after `start` (at most
        `MAX_HELD_BYTES` of cubes) in memory; `wait` saves them.
        """
        if partial.failed or len(partial.fills) != 1:
            return
        # cubes in host memory are held compact; a device's stay there until saved
        on_host = isinstance(partial.counts, np.ndarray)
        item = _compact(partial) if on_host else partial
        if (
            not self.keep
            and self._started is not None
            and time.monotonic() - self._started < SAVE_AFTER_S
        ):
            self._held.append((task, item))
            cubes = (item["counts"], item["time"]) if on_host else (partial.counts, partial.time)
            self._held_bytes += sum(getattr(a, "nbytes", 0) for a in cubes)
            if self._held_bytes <= MAX_HELD_BYTES:
                return
        self._save_held()
        self._submit(task, item)

    def _save_held(self):
        held, self._held, self._held_bytes = self._held, [], 0
        for task, item in held:
            self._submit(task, item)

    def _submit(self, task, item):
        """Queue a run's file: ``item`` its `_compact` arrays, or its `PartialCubes`."""
        arrays = _compact(item) if isinstance(item, PartialCubes) else item
        info = dict(arrays["info"], key=self.run_key(task, arrays["info"].get("reach")))
        arrays = dict(arrays, info=np.array(json.dumps(info)))
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgcube-checkpoint")
        self._pending.append(self._writer.submit(_save_npz, self._path(task.obs_id), arrays))
        while len(self._pending) > MAX_PENDING_SAVES:
            self._pending.popleft().result()

    def wait(self, *, save_held: bool = True):
        """Wait until every run given to `save` is written.

        Parameters
        ----------
        save_held : bool
            Save the runs `save` held in memory too (default); False leaves
            them held (a finished build whose checkpoint will be removed).

        Raises
        ------
        OSError
            The first error of a save (e.g. a full disk).
        """
        try:
            if save_held:
                self._save_held()
            while self._pending:
                self._pending.popleft().result()
        finally:
            if self._writer is not None and not self._pending:
                self._writer.shutdown()
                self._writer = None

    def holds(self, task: RunTask) -> bool:
        """Whether a saved run may be there for `load` (a cheap test: the file exists)."""
        return self.resumed and self._path(task.obs_id).is_file()

    def load(self, task: RunTask) -> PartialCubes | None:
        """A saved run's partial cubes if they are there and still valid, else None."""
        path = self._path(task.obs_id)
        if not self.resumed or not path.is_file():
            return None
        shape = tuple(len(e) - 1 for e in (task.energy_edges, task.dety_edges, task.detx_edges))
        try:
            with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as data:
                info = json.loads(str(data["info"]))
                counts, time = data["counts"], data["time"]
        except Exception as exc:  # a damaged file of any kind: recompute the run
            return self._discard(task.obs_id, f"cannot be read ({type(exc).__name__}: {exc})")
        saved = info.get("key")
        key = self.run_key(task, info.get("reach"))
        if saved != key:
            changed = [
                text for name, text in _KEY_PARTS.items() if (saved or {}).get(name) != key[name]
            ]
            return self._discard(task.obs_id, ", ".join(changed) or "made with other settings")
        if (
            counts.shape != shape
            or time.shape not in (shape, shape[1:])
            or counts.dtype not in (np.float32, np.float64)
            or time.dtype != np.float64
        ):
            return self._discard(task.obs_id, f"cubes of shape {counts.shape}, expected {shape}")
        counts = counts.astype(np.float64)  # exact: float32 only where it held them exactly
        time = np.array(np.broadcast_to(time, shape))
        reach = info.get("reach")
        fill = ObservationFill(
            obs_id=int(info["obs_id"]),
            n_events=int(info["n_events"]),
            n_excluded=int(info["n_excluded"]),
            n_filled=int(info["n_filled"]),
            time=info["time_s"] * u.s,
            exclusion_reach=None if reach is None else tuple(reach),
        )
        areas = ((fill.obs_id, float(info["area_m2"])),) if "area_m2" in info else ()
        return PartialCubes(counts, time, (fill,), areas=areas)

    def _discard(self, obs_id, reason):
        self.discarded.append((int(obs_id), reason))
        self._path(obs_id).unlink(missing_ok=True)
        return None

    def report(self):
        """Add one message about the discarded runs, if any."""
        if self.discarded:
            ids = ", ".join(str(i) for i, _ in self.discarded[:10])
            more = "" if len(self.discarded) <= 10 else ", ..."
            reasons = {}
            for _, reason in self.discarded:
                reasons[reason] = reasons.get(reason, 0) + 1
            why = "; ".join(
                reason if len(reasons) == 1 else f"{reason} ({n})" for reason, n in reasons.items()
            )
            self._say(f"{len(self.discarded)} saved run(s) recomputed (OBS_ID {ids}{more}): {why}")

    @contextlib.contextmanager
    def handling_errors(self):
        """A block (the build's work) after which a failure keeps or removes the checkpoint.

        After an interruption or a failure of the system (`worth_resuming`),
        the held runs are saved (see `save`): a build that fails after its
        runs were computed (writing its outputs, say) still leaves every
        finished run for ``resume``. After an error the same build would
        hit again, the checkpoint folder is removed, with the output files
        and folders the build created: the corrected build needs neither
        ``resume`` nor ``overwrite``.
        """
        try:
            yield self
        except BaseException as exc:
            if worth_resuming(exc):
                self.wait()
            else:
                self.remove(created=True)
            raise

    def remove(self, *, created: bool = False):
        """Delete the checkpoint folder (after the saves still being written).

        Parameters
        ----------
        created : bool
            Also delete the output files the build created (those of its
            planned outputs that did not exist when it started), and the
            folders it created for them if they are left empty.
        """
        self._held, self._held_bytes = [], 0
        try:
            self.wait()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            for path in self._new_paths if created else ():
                with contextlib.suppress(OSError):  # a folder not empty: kept
                    if path.is_dir():
                        path.rmdir()
                    else:
                        path.unlink(missing_ok=True)


def _compact(partial: PartialCubes) -> dict:
    """A finished run's arrays as saved: counts as float32 where that is exact, the time
    cube as one image where it is the same in every energy bin, and what it added (a dict,
    written as JSON with the run's key)."""
    fill = partial.fills[0]
    info = {
        "obs_id": fill.obs_id,
        "n_events": fill.n_events,
        "n_excluded": fill.n_excluded,
        "n_filled": fill.n_filled,
        "time_s": float(fill.time.to_value(u.s)),
    }
    if fill.exclusion_reach is not None:  # the exclusion circles that count (run_key)
        info["reach"] = [float(v) for v in fill.exclusion_reach]
    if partial.areas:  # the run's effective area, read in the same pass (RunTask.effective_area)
        info["area_m2"] = float(partial.areas[0][1])
    counts = np.asarray(to_numpy(partial.counts), dtype=np.float64)
    time = np.asarray(to_numpy(partial.time), dtype=np.float64)
    small = counts.astype(np.float32)
    if np.array_equal(small, counts):  # exact (no NaN): e.g. whole counts below 2**24
        counts = small
    if time.ndim == 3 and np.array_equal(time, np.broadcast_to(time[:1], time.shape)):
        time = np.ascontiguousarray(time[0])
    return {"counts": counts, "time": time, "info": info}


def _save_npz(path, arrays):
    with atomic_output(path, overwrite=True) as tmp:
        _write_npz(tmp, arrays)


def _write_npz(path, arrays):
    """Like `numpy.savez_compressed`, with fast compression (a run's cubes: ~20 kB, ~3 ms)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)


def _read_manifest(folder):
    try:
        return json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _selection_change(previous, manifest) -> str:
    """'the run selection changed (...)' when the two builds' runs differ, else ''."""
    if not previous or "obs_ids" not in previous:
        return ""
    before, now = set(previous["obs_ids"]), set(manifest["obs_ids"])
    if before == now:
        return ""
    counts = []
    if now - before:
        counts.append(f"{len(now - before)} run(s) added")
    if before - now:
        counts.append(f"{len(before - now)} left out")
    return f"the run selection changed (--obs-ids/--exclude-obs-ids/--select: {', '.join(counts)})"


def _differences(previous, manifest):
    if previous is None:
        return []
    if not previous:
        return ["manifest (missing or unreadable)"]
    names = {
        "bgcube": "bgcube version",
        "time_convention": "time convention",
        "alignment": "alignment",
        "format": "checkpoint format",
    }
    return [names[k] for k in _BUILD_KEYS if previous.get(k) != manifest.get(k)]

"""Safety of a build's output folder: never inside its input, one build at a time.

* `check_output_outside_input`: a build refuses an output folder that is
  its input data folder, lies inside it, or contains it (symbolic links
  resolved), so that nothing under the input folder is ever written.
* `check_output_folder`: an output folder that is a file is refused.
* `data_store_around`: the data store (a folder holding an HDU or
  observation index) an output folder is or lies inside, which a command
  making a new data set (``bgcube demo``) refuses.
* `BuildLock`: a lock file ``OUTDIR/.bgcube.lock`` holding the PID, host and
  start time of the build that writes OUTDIR. A second build into the same
  folder refuses while the first runs; the lock of a build that was killed
  (its PID no longer runs on this host) is recognised as stale and replaced.
* `guarded_build`: the decorator that applies both to a build function
  taking ``(indir, outdir, ...)``; it also removes the unfinished temporary
  files a killed build left, and an output folder it created when the build
  fails before writing anything in it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shutil
import socket
import time
from pathlib import Path

from ..data.store import HDU_INDEX, OBS_INDEX
from ..errors import BgcubeError

__all__ = [
    "OutputFolderError",
    "OutputInsideInputError",
    "OutputLockedError",
    "BuildLock",
    "LOCK_NAME",
    "check_output_folder",
    "check_output_outside_input",
    "data_store_around",
    "guarded_build",
    "remove_leftover_temporaries",
]

#: Name of the lock file inside the output folder.
LOCK_NAME = ".bgcube.lock"


class OutputInsideInputError(BgcubeError, ValueError):
    """The output folder is, lies inside, or contains the input data folder."""


class OutputFolderError(BgcubeError, ValueError):
    """The output folder is a file, or a folder bgcube may not write into."""


class OutputLockedError(BgcubeError, OSError):
    """Another build is writing into the same output folder (its lock file is live)."""


def _input_folders(indir) -> list[Path]:
    """The folders of the input data set: the folder itself and those of its index files."""
    folders = []
    if isinstance(indir, str | os.PathLike):
        path = Path(indir).expanduser()
        folders.append(path.parent if path.is_file() else path)
    else:  # a DataStore (or an object standing for one): the folders of its index files
        for name in ("hdu_index_file", "obs_index_file"):
            value = getattr(indir, name, None)
            if value:
                folders.append(Path(value).parent)
        base = getattr(indir, "base_dir", None)
        if isinstance(base, str | os.PathLike) and not folders:
            folders.append(Path(base))
    return [Path(os.path.realpath(f)) for f in folders]


def check_output_outside_input(indir, outdir) -> None:
    """Refuse an output folder that would write into or over the input data set.

    Parameters
    ----------
    indir : str, path or `~bgcube.data.store.DataStore`
        The input data set (its folder, or a data store whose index files
        give the folders).
    outdir : str or path
        The output folder (it need not exist).

    Raises
    ------
    OutputInsideInputError
        If ``outdir`` (symbolic links resolved) is the input folder, lies
        inside it, or contains it.
    """
    out = Path(os.path.realpath(Path(outdir).expanduser()))
    for folder in _input_folders(indir):
        if out == folder:
            relation = "is the input data folder"
        elif folder in out.parents:
            relation = f"lies inside the input data folder {str(folder)!r}"
        elif out in folder.parents:
            relation = f"contains the input data folder {str(folder)!r}"
        else:
            continue
        raise OutputInsideInputError(
            f"output folder {str(outdir)!r} {relation}; bgcube never writes into its input: "
            "choose an output folder outside the data set"
        )


def check_output_folder(outdir) -> None:
    """Refuse an output folder that exists as something other than a folder.

    Parameters
    ----------
    outdir : str or path
        The output folder (it need not exist).

    Raises
    ------
    OutputFolderError
        If ``outdir`` is a file.
    """
    path = Path(outdir).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputFolderError(
            f"OUTDIR {str(outdir)!r} is a file, not a folder: choose a folder "
            "(it is created if missing)"
        )


#: Names of the index files that make a folder a data store (GADF: gzipped or not).
_INDEX_NAMES = tuple(
    name for index in (HDU_INDEX, OBS_INDEX) for name in (index, index.removesuffix(".gz"))
)


def data_store_around(outdir) -> Path | None:
    """The data store folder ``outdir`` is or lies inside, if any.

    A data store folder is one holding an HDU or observation index
    (``hdu-index.fits[.gz]``, ``obs-index.fits[.gz]``). Symbolic links are
    resolved.

    Parameters
    ----------
    outdir : str or path
        The output folder (it need not exist).

    Returns
    -------
    folder : `~pathlib.Path` or None
    """
    out = Path(os.path.realpath(Path(outdir).expanduser()))
    for folder in (out, *out.parents):
        for name in _INDEX_NAMES:
            with contextlib.suppress(OSError):
                if (folder / name).is_file():
                    return folder
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class BuildLock:
    """The lock file of a build writing into ``outdir`` (``OUTDIR/.bgcube.lock``).

    Parameters
    ----------
    outdir : str or path
        The output folder (must exist).

    Examples
    --------
    >>> with BuildLock(outdir):  # doctest: +SKIP
    ...     ...                  # write into outdir
    """

    def __init__(self, outdir):
        self.path = Path(outdir) / LOCK_NAME
        self.stale = None  # what a replaced stale lock said, for messages
        self._held = False

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _is_stale(self, owner) -> bool:
        if owner.get("host") != socket.gethostname():
            return False  # cannot tell: a build on another host may be running
        pid = owner.get("pid")
        return isinstance(pid, int) and not _process_alive(pid)

    def acquire(self) -> BuildLock:
        """Take the lock; replace a stale one.

        Raises
        ------
        OutputLockedError
            If a build that is still running (or runs on another host, where
            bgcube cannot tell) holds the lock.
        """
        record = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                if not owner:  # being written this instant, or unreadable: look again
                    time.sleep(0.1)
                    owner = self._owner()
                if owner and self._is_stale(owner):
                    self.stale = owner
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                who = (
                    f"PID {owner.get('pid')} on host {owner.get('host')}, started "
                    f"{owner.get('started')}"
                    if owner
                    else "an unreadable lock"
                )
                raise OutputLockedError(
                    f"another bgcube build is writing into {str(self.path.parent)!r} ({who}); "
                    f"wait for it to finish, or delete {str(self.path)!r} if that build is "
                    "no longer running"
                ) from None
            with os.fdopen(fd, "w") as stream:
                stream.write(record)
            self._held = True
            return self
        raise OutputLockedError(f"could not take the lock {str(self.path)!r}")

    def release(self) -> None:
        """Remove the lock file (if this object holds it)."""
        if self._held:
            self._held = False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def remove_leftover_temporaries(outdir) -> int:
    """Remove the unfinished temporary files of an earlier, killed build in ``outdir``.

    Only to be called while holding the folder's `BuildLock`: then no other
    bgcube build writes there, and every file carrying the temporary-file
    marker (`bgcube.io.atomic.TEMP_MARKER`) is a leftover.

    Returns
    -------
    n_removed : int
    """
    from ..io.atomic import TEMP_MARKER

    removed = 0
    for path in Path(outdir).rglob(f"{TEMP_MARKER}*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def _only_lock_left(folder: Path) -> bool:
    """True if ``folder`` holds nothing but empty folders (the lock is gone by then)."""
    return (
        all(p.is_dir() and not any(p.iterdir()) for p in folder.rglob("*"))
        if folder.is_dir()
        else False
    )


def guarded_build(function):
    """Decorate a build ``function(indir, outdir, ...)``: input check, lock, clean-up.

    Before the build runs, ``outdir`` is checked (`check_output_folder`),
    checked against ``indir`` (`check_output_outside_input`) and locked
    (`BuildLock`). If the build
    fails and ``outdir`` did not exist before and holds nothing but empty
    folders, it is removed, so that a failed start leaves nothing behind.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        indir, outdir = bound.arguments["indir"], Path(bound.arguments["outdir"])
        check_output_folder(outdir)
        check_output_outside_input(indir, outdir)
        existed = outdir.exists()
        outdir.mkdir(parents=True, exist_ok=True)
        try:
            with BuildLock(outdir) as lock:
                leftovers = remove_leftover_temporaries(outdir)
                result = function(*args, **kwargs)
        except BaseException:
            if not existed and _only_lock_left(outdir):
                shutil.rmtree(outdir, ignore_errors=True)
            raise
        messages = getattr(result, "messages", None)
        if isinstance(messages, list):
            if lock.stale:
                messages.append(
                    f"replaced the stale lock of a build that no longer runs (PID "
                    f"{lock.stale.get('pid')}, started {lock.stale.get('started')})"
                )
            if leftovers:
                messages.append(
                    f"removed {leftovers} unfinished temporary file(s) left by an interrupted build"
                )
        return result

    return wrapper

"""Atomic file output: write to a temporary file beside the target, then rename.

Every file bgcube writes goes through :func:`atomic_output`, so that

* an existing file is never replaced unless ``overwrite=True`` is given
  (:class:`~bgcube.errors.OutputExistsError` names the file otherwise);
* a write that fails half-way leaves the old file untouched and no partial
  or temporary file behind;
* readers never see a half-written file: the finished temporary file takes
  the target's name in one ``os.replace`` (or ``os.link``) step.

The temporary file keeps the target's extension, so writers that choose a
compression from the name (astropy writes ``*.fits.gz`` gzipped) do the
same for the temporary file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputExistsError

__all__ = ["atomic_output", "check_writable", "resolve_overwrite", "TEMP_MARKER"]

#: Part of every temporary file name, so that leftovers are easy to spot.
TEMP_MARKER = ".bgcube-tmp-"


def check_writable(filename, overwrite: bool) -> Path:
    """Return ``filename`` as a Path; raise if it exists and ``overwrite`` is false.

    A leading ``~`` is the user's home folder. The folder need not exist
    yet (outputs are checked before their folders are made).

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    IsADirectoryError
        If ``filename`` is a directory.
    """
    path = Path(filename).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"cannot write to {str(path)!r}: it is a directory")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"file {str(path)!r} already exists; pass overwrite=True to replace it"
        )
    return path


def resolve_overwrite(overwrite: bool, clobber, warn_stacklevel: int = 3) -> bool:
    """Merge the deprecated ``clobber=`` keyword into ``overwrite``.

    Parameters
    ----------
    overwrite : bool
        The current keyword.
    clobber : bool or None
        The old keyword; anything but None emits a
        `~bgcube.errors.BgcubeDeprecationWarning`.
    warn_stacklevel : int
        Stack level of the warning (default: the caller's caller).

    Returns
    -------
    overwrite : bool
        ``overwrite or clobber``.
    """
    if clobber is None:
        return bool(overwrite)
    import warnings

    from ..errors import BgcubeDeprecationWarning

    warnings.warn(
        "the 'clobber' keyword is deprecated; use 'overwrite' instead",
        BgcubeDeprecationWarning,
        stacklevel=warn_stacklevel,
    )
    return bool(overwrite or clobber)


def _check_folder(path: Path, filename) -> None:
    """Refuse a target whose folder is missing or a file, naming it (not the temporary file)."""
    folder = path.parent
    if folder.is_dir():
        return
    kind, what = (
        (NotADirectoryError, "is a file, not a folder")
        if folder.exists()
        else (FileNotFoundError, "does not exist; create it first")
    )
    raise kind(f"cannot write {str(filename)!r}: its folder {str(folder)!r} {what}")


def _temporary_name(path: Path) -> Path:
    # Keep the full suffix chain (".fits.gz") at the end of the name.
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    token = secrets.token_hex(6)
    return path.with_name(f"{TEMP_MARKER}{stem}-{token}{suffix}")


def _create_exclusive(path: Path) -> None:
    # 0o666 filtered by the umask: the final file gets ordinary permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    # No-clobber publication: link() fails atomically if the target appeared
    # since the first check. Fall back to a checked replace where the file
    # system has no hard links.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(
            f"file {str(path)!r} already exists; pass overwrite=True to replace it"
        ) from None
    except OSError:
        if path.exists():
            raise OutputExistsError(
                f"file {str(path)!r} already exists; pass overwrite=True to replace it"
            ) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextmanager
def atomic_output(filename: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Context manager giving a temporary path that becomes ``filename`` on success.

    Parameters
    ----------
    filename : str or path
        The file to write. Its folder must exist.
    overwrite : bool
        Replace an existing file (default False).

    Yields
    ------
    tmp : pathlib.Path
        An empty file in the same folder with the same extension; write to
        it (replacing it is fine, e.g. ``HDUList.writeto(tmp, overwrite=True)``).

    Raises
    ------
    OutputExistsError
        If ``filename`` exists and ``overwrite`` is false (checked before
        and again when the file is published).
    FileNotFoundError
        If the folder of ``filename`` does not exist (``NotADirectoryError``
        if it is a file); the message names it.

    Examples
    --------
    >>> from astropy.io import fits
    >>> with atomic_output("cube.fits", overwrite=True) as tmp:  # doctest: +SKIP
    ...     fits.HDUList([fits.PrimaryHDU()]).writeto(tmp, overwrite=True)
    """
    path = check_writable(filename, overwrite)
    _check_folder(path, filename)
    tmp = _temporary_name(path)
    try:
        _create_exclusive(tmp)
    except OSError as exc:  # e.g. a read-only folder: name the file asked for, not tmp
        raise type(exc)(
            exc.errno, f"cannot write {str(filename)!r} ({exc.strerror} in its folder)"
        ) from exc
    try:
        yield tmp
        _publish(tmp, path, overwrite)
    finally:
        if tmp.exists():
            tmp.unlink()

"""How an output data store points at the input files it does not copy.

An output folder written for Gammapy (``hdu-index.fits.gz`` +
``obs-index.fits.gz`` + the new background files) lists, for every run, the
HDUs of the input data set (events, GTI, IRFs). Gammapy reads each HDU at
``<folder of hdu-index>/FILE_DIR/FILE_NAME``, with no fallback, so one
written path cannot survive every move. The rule is chosen when writing
(``input_paths``):

``'relative'`` (default)
    FILE_DIR relative to the output folder (``../hess-dl3-dr1/data``). Keeps
    working when the output folder is moved or copied, to this or another
    machine, *together with* the input data folder, in the same relative
    place. Breaks when the output folder alone is moved.
``'absolute'``
    FILE_DIR absolute. Keeps working when the output folder alone is moved
    and the input data stay where they are. Breaks when the data move.
``'copy'``
    The input files of the written runs are copied into ``OUTDIR/data/``
    (the input's own sub-folders kept): a self-contained folder that can
    go anywhere.
``'link'``
    Symbolic links in ``OUTDIR/data/`` to the absolute input files: behaves
    like ``'absolute'`` and shows the files inside the folder.

The new background files are always inside the output folder and listed
relative to it. The hdu-index header records the rule (``BGPATHS``) and the
absolute input folder (``BGINDIR``), so a broken folder can be re-pointed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import OutputExistsError

__all__ = [
    "INPUT_PATH_RULES",
    "COPY_SUBDIR",
    "input_hdu_rows",
    "check_transfers",
    "transfer_input_files",
]

#: Accepted values of ``input_paths``.
INPUT_PATH_RULES = ("relative", "absolute", "copy", "link")
#: Folder of copied or linked input files, inside the output folder.
COPY_SUBDIR = "data"


def _abs(path) -> Path:
    """Absolute, normalised path; symbolic links are kept (the user's view of the folders)."""
    return Path(os.path.abspath(path))


def _relative(path, start):
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive: keep it absolute
        return Path(path).as_posix()


def input_hdu_rows(store, obs_ids, outdir, rule="relative", *, skip_types=("bkg",), replaced=None):
    """HDU-index rows of the input HDUs of some runs, with FILE_DIR for the output folder.

    Parameters
    ----------
    store : `~bgcube.data.store.DataStore`
        The input data store.
    obs_ids : sequence of int
        The runs written.
    outdir : str or path
        The output folder.
    rule : {'relative', 'absolute', 'copy', 'link'}
        See the module docstring.
    skip_types : sequence of str
        HDU_TYPEs left out (the ones the output replaces).
    replaced : sequence of int, optional
        The runs whose ``skip_types`` rows are left out (default: all of ``obs_ids``).

    Returns
    -------
    columns : dict of str to list
        OBS_ID, HDU_TYPE, HDU_CLASS, FILE_DIR, FILE_NAME, HDU_NAME.
    transfers : list of (`~pathlib.Path`, `~pathlib.Path`)
        (input file, destination) for 'copy' and 'link', one per file.
    """
    if rule not in INPUT_PATH_RULES:
        raise ValueError(f"input_paths must be one of {INPUT_PATH_RULES}, got {rule!r}")
    outdir = _abs(outdir)
    base = _abs(store.base_dir)
    table = store.hdu_table
    obs = np.asarray(table["OBS_ID"], dtype=np.int64)
    types = np.array([str(t).strip().lower() for t in table["HDU_TYPE"]])
    replaced = obs_ids if replaced is None else replaced
    keep = np.isin(obs, np.asarray(list(obs_ids), dtype=np.int64)) & ~(
        np.isin(types, [t.lower() for t in skip_types])
        & np.isin(obs, np.asarray(list(replaced), dtype=np.int64))
    )
    columns = {
        k: [] for k in ("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME")
    }
    transfers = {}
    file_dirs = {}  # the FILE_DIR written for each input folder: one path computation per folder
    base_text, out_text = str(base), str(outdir)
    kept = np.nonzero(keep)[0]
    names = ["HDU_TYPE", "FILE_DIR", "FILE_NAME", "HDU_NAME"]
    names += ["HDU_CLASS"] if "HDU_CLASS" in table.colnames else []
    text = {k: [str(v).strip() for v in table[k][kept]] for k in names}  # the kept rows only
    text.setdefault("HDU_CLASS", [""] * kept.size)
    for n, i in enumerate(kept):
        source_text = os.path.abspath(
            os.path.join(base_text, text["FILE_DIR"][n], text["FILE_NAME"][n])
        )
        if rule in ("copy", "link"):
            source = Path(source_text)
            inside = _relative(source, base)
            if inside.startswith("..") or Path(inside).is_absolute():
                inside = f"external/{source.name}"
            destination = outdir / COPY_SUBDIR / inside
            transfers.setdefault(source, destination)
            file_dir = _relative(transfers[source].parent, outdir)
            file_name = transfers[source].name
        else:
            folder, file_name = os.path.split(source_text)
            file_dir = file_dirs.get(folder)
            if file_dir is None:
                file_dir = file_dirs[folder] = (
                    Path(folder).as_posix() if rule == "absolute" else _relative(folder, out_text)
                )
        columns["OBS_ID"].append(int(obs[i]))
        columns["HDU_TYPE"].append(text["HDU_TYPE"][n])
        columns["HDU_CLASS"].append(text["HDU_CLASS"][n])
        columns["FILE_DIR"].append(file_dir)
        columns["FILE_NAME"].append(file_name)
        columns["HDU_NAME"].append(text["HDU_NAME"][n])
    return columns, list(transfers.items())


def check_transfers(transfers, overwrite=False) -> None:
    """Raise `OutputExistsError` if a destination exists and ``overwrite`` is false."""
    for _, destination in transfers:
        if (destination.exists() or destination.is_symlink()) and not overwrite:
            raise OutputExistsError(
                f"file {str(destination)!r} exists; pass overwrite=True to replace it"
            )


def transfer_input_files(transfers, rule, overwrite=False) -> list[Path]:
    """Copy (``'copy'``) or link (``'link'``) input files into the output folder.

    Each copy is written to a temporary name beside its destination and then
    renamed, so an interrupted copy leaves no partial file under the final
    name. Returns the destinations.
    """
    check_transfers(transfers, overwrite)
    out = []
    for source, destination in transfers:
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.tmp{os.getpid()}")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if rule == "copy":
            shutil.copy2(source, tmp)
        else:
            os.symlink(source, tmp)
        os.replace(tmp, destination)
        out.append(destination)
    return out

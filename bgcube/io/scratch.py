"""Scratch arrays: rows in an unnamed temporary file, their pages given back after use.

A build that keeps a cube per run (the joint model's counts, read once per
run, then summed once by the fit) would hold the whole archive in memory.
`scratch_array` puts the rows in an unnamed temporary file mapped into
memory instead; `release_rows` tells the operating system that the process
no longer needs the pages of some rows. Their data stay in the file (a
shared file mapping: a later read faults them back in), but they no longer
count in the process's resident memory, which thus stays bounded by the
rows in use whatever the number of runs. Where ``madvise`` is missing
(not Linux or macOS), releasing does nothing and the pages stay resident
until the array is dropped.
"""

from __future__ import annotations

import mmap
import tempfile

import numpy as np

__all__ = ["scratch_array", "release_rows"]


def scratch_array(shape, dtype, folder=None) -> np.memmap:
    """A zero-filled array memory-mapped from an unnamed temporary file.

    Parameters
    ----------
    shape : tuple of int
        Array shape; rows are along the first axis.
    dtype : numpy dtype
    folder : path-like, optional
        Where the file lives (default: the system's temporary folder); it
        has no name there and is deleted with the array.

    Returns
    -------
    array : numpy.memmap
        Writable, C-ordered; it owns its mapping (the file is closed).
    """
    dtype = np.dtype(dtype)
    with tempfile.TemporaryFile(dir=None if folder is None else str(folder)) as handle:
        handle.truncate(max(int(np.prod(shape)) * dtype.itemsize, 1))
        return np.memmap(handle, dtype=dtype, mode="r+", shape=tuple(shape))


def _mapping(array):
    """The `mmap.mmap` under ``array`` (a memmap or a view of one), or None."""
    while array is not None:
        mapped = getattr(array, "_mmap", None)
        if isinstance(mapped, mmap.mmap):
            return mapped
        array = getattr(array, "base", None)
    return None


def release_rows(array, lo: int, hi: int) -> None:
    """Give back the pages of rows ``lo:hi`` of a scratch array (their data are kept).

    Rows of anything but a C-contiguous memory-mapped array are left as
    they are. The pages at either end may hold parts of the neighbouring
    rows: those are read back from the file if used again.
    """
    advise = getattr(mmap, "MADV_DONTNEED", None)
    mapped = _mapping(array)
    if advise is None or mapped is None or hi <= lo or not array.flags.c_contiguous:
        return
    base = np.frombuffer(mapped, dtype=np.uint8, count=1).ctypes.data
    row = array.strides[0]
    start = array.ctypes.data - base + lo * row
    stop = array.ctypes.data - base + min(hi, array.shape[0]) * row
    page = mmap.PAGESIZE
    start, stop = (start // page) * page, min(-(-stop // page) * page, len(mapped))
    if stop > start:
        mapped.madvise(advise, start, stop - start)

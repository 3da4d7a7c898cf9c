"""Read and decompress the next files in a background thread while this one is processed.

A build reads its runs one after the other; on a gzipped data set most of
a run's read is zlib decompression, which releases the GIL. `Prefetcher`
reads the bytes of the next files (and decompresses them) in one thread
while the calling thread parses and fills the current run, so on a
machine with two cores the decompression runs on the second one.
`~bgcube.io.fits.open_fits` takes a prefetched file's bytes with `take`;
a file nobody prefetched is read as before. Errors of a prefetch are not
raised there: the normal read meets them again and reports them with the
file's name.
"""

from __future__ import annotations

import gzip
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Prefetcher", "take", "gunzip", "read_file_bytes"]

_GZIP_MAGIC = b"\x1f\x8b"
_lock = threading.Lock()
_ready = {}  # path -> Future of the file's (decompressed) bytes


def gunzip(data: bytes) -> bytes:
    """Decompress gzip data (every member) in one call; zlib releases the GIL meanwhile."""
    return gzip.decompress(data)


def read_file_bytes(path) -> bytes:
    """The bytes of a file, decompressed if it is gzipped."""
    with open(path, "rb") as f:
        data = f.read()
    return gunzip(data) if data[:2] == _GZIP_MAGIC else data


def _key(path):
    return None if path is None else os.path.abspath(os.fspath(path))


def take(path):
    """The prefetched (decompressed) bytes of ``path``, or None if not prefetched or failed.

    Waits for a prefetch still running. The bytes are handed out once.
    """
    key = _key(path)
    if key is None:
        return None
    with _lock:
        future = _ready.pop(key, None)
    if future is None:
        return None
    try:
        return future.result()
    except Exception:  # the normal read meets the error again and names the file
        return None


class Prefetcher:
    """Read the files of coming runs ahead, in one background thread.

    Parameters
    ----------
    depth : int
        Files read ahead at most (each is held in memory, decompressed,
        until it is taken).

    Examples
    --------
    >>> with Prefetcher() as ahead:                      # doctest: +SKIP
    ...     for i, path in enumerate(paths):
    ...         ahead.schedule(paths[i + 1:i + 2])
    ...         process(path)                            # open_fits takes the bytes
    """

    def __init__(self, depth: int = 1):
        self.depth = max(1, int(depth))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgcube-prefetch")
        self._mine = []

    def schedule(self, paths):
        """Read the first ``depth`` of ``paths`` ahead (dropping earlier reads not among them).

        Parameters
        ----------
        paths : sequence of str or path or None
            The files of the coming runs, in the order they will be opened
            (None entries are skipped).
        """
        wanted = [k for k in (_key(p) for p in paths) if k is not None][: self.depth]
        with _lock:
            for key in self._mine:
                if key not in wanted and key in _ready:
                    _ready.pop(key).cancel()
            self._mine = [k for k in self._mine if k in _ready]
            for key in wanted:
                if key not in _ready:
                    _ready[key] = self._pool.submit(read_file_bytes, key)
                    self._mine.append(key)

    def close(self):
        """Stop: drop what was read and not taken, wait for the thread to end."""
        with _lock:
            for key in self._mine:
                future = _ready.pop(key, None)
                if future is not None:
                    future.cancel()
            self._mine = []
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

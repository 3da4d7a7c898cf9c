"""Read and decompress the next files in a background thread while this one is processed.

A build reads its runs one after the other; on a gzipped data set most of
a run's read is zlib decompression, which releases the GIL. `Prefetcher`
reads the bytes of the next files (and decompresses them) in one thread
while the calling thread parses and fills the current run, so on a
machine with two cores the decompression runs on the second one.
`~bgcube.io.fits.open_fits` takes a prefetched file's bytes with `take`;
a file nobody prefetched is read as before. A file scheduled with its HDU
(the lean EVENTS reader of `bgcube.io.lean_fits`) is decompressed only as
far as the last file's reader needed (`note_needed`), in one zlib call, so
the thread runs next to no Python and never holds the reader up. Errors of a prefetch are not
raised there: the normal read meets them again and reports them with the
file's name.
"""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "Prefetcher",
    "FileBytes",
    "take",
    "take_source",
    "put_back",
    "note_needed",
    "spare_core",
    "gunzip",
    "read_file_bytes",
]

_GZIP_MAGIC = b"\x1f\x8b"
_lock = threading.Lock()
_ready = {}  # path -> Future of the file's FileBytes
_returned = {}  # path -> FileBytes given back (`put_back`), one at most

try:  # ISA-L's inflate: the same bytes, about 1.6x faster than zlib's
    from isal.isal_zlib import decompressobj as _decompressobj
except ImportError:  # pragma: no cover - isal is a dependency; zlib does the same
    _decompressobj = zlib.decompressobj

#: Bytes decompressed at least per step of `FileBytes.ensure` (a step releases the GIL).
_STEP = 1 << 15
#: Compressed bytes of a gzipped file read at least at a time (the file is read only
#: as far as its decompression goes: a header alone needs the first few kB).
_RAW_STEP = 1 << 16


def gunzip(data: bytes) -> bytes:
    """Decompress gzip data (every member) in one call; zlib releases the GIL meanwhile."""
    return gzip.decompress(data)


def read_file_bytes(path) -> bytes:
    """The bytes of a file, decompressed if it is gzipped."""
    with open(path, "rb") as f:
        data = f.read()
    return gunzip(data) if data[:2] == _GZIP_MAGIC else data


class FileBytes:
    """The (decompressed) bytes of a file, decompressed only as far as asked.

    A reader that needs the first HDUs of a gzipped file asks for them with
    `ensure`; the rest is never decompressed (the event list of a DL3 file
    comes before its response functions, often two thirds of the file).
    `full` gives every byte exactly as `read_file_bytes` does, errors of a
    damaged file included.

    Parameters
    ----------
    path : str or path
        The file: read as far as asked (a gzipped one as far as its
        decompression needs, then all of it for `full`).
    """

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            head = f.read(_RAW_STEP)
        self.gzipped = head[:2] == _GZIP_MAGIC
        self._raw = bytearray(head) if self.gzipped else bytearray()  # compressed, read so far
        self._raw_done = not self.gzipped or len(head) < _RAW_STEP
        self._full = None
        self._out = bytearray()
        self._z = _decompressobj(31) if self.gzipped else None
        self._member = self._raw  # compressed data of the member being decompressed
        self._pos = 0  # bytes of it fed to the decompressor
        self._end = False

    def _read_raw(self, size=-1) -> bool:
        """Read ``size`` more compressed bytes (all the rest for -1); False at the file's end."""
        if self._raw_done:
            return False
        with open(self.path, "rb") as f:
            f.seek(len(self._raw))
            chunk = f.read(size)
        self._raw += chunk
        self._raw_done = size < 0 or len(chunk) < size
        return bool(chunk)

    @property
    def buffer(self):
        """The bytes decompressed (read) so far: a growing buffer, copy what is kept."""
        return self._out if self._full is None else self._full

    def __len__(self):
        return len(self.buffer)

    def ensure(self, n: int) -> bool:
        """Decompress (read) until at least ``n`` bytes are there; False if the file ends first.

        Raises
        ------
        zlib.error
            If the compressed data are damaged before that point.
        """
        while self._full is None and len(self._out) < n and not self._end:
            self._step(max(_STEP, n - len(self._out)))
        return len(self.buffer) >= n

    def _step(self, size):
        if not self.gzipped:
            with open(self.path, "rb") as f:
                f.seek(len(self._out))
                chunk = f.read(size)
            self._out += chunk
            self._end = len(chunk) < size
            return
        z = self._z
        if z.unconsumed_tail:
            self._out += z.decompress(z.unconsumed_tail, size)
        elif self._pos < len(self._member):
            chunk = self._member[self._pos : self._pos + size]
            self._pos += len(chunk)
            self._out += z.decompress(chunk, size)
        elif self._member is self._raw and self._read_raw(max(_RAW_STEP, size)):
            return  # more of the file read: the next step decompresses it
        else:
            self._end = True  # truncated: `full` raises the error
            return
        if z.eof:
            if self._member is self._raw:
                self._read_raw()  # another member may follow: the rest of the file
            rest = bytes(z.unused_data) + bytes(self._member[self._pos :])
            if rest[:2] == _GZIP_MAGIC:  # another gzip member
                self._z, self._member, self._pos = _decompressobj(31), rest, 0
            else:
                self._end = True

    def full(self) -> bytes:
        """Every byte of the file (decompressed), as `read_file_bytes` gives them.

        Raises
        ------
        OSError, EOFError, zlib.error
            As `gzip.decompress` does, for a damaged gzipped file.
        """
        if self._full is None:
            if self.gzipped:
                self._read_raw()
                self._full = gunzip(bytes(self._raw))
            else:
                self._full = read_file_bytes(self.path)
        return self._full


def _key(path):
    return None if path is None else os.path.abspath(os.fspath(path))


def take_source(path):
    """The prefetched `FileBytes` of ``path``, or None if not prefetched, not ready or failed.

    Never waits: a read ahead that has not finished is dropped and the
    caller reads the file itself (on a busy machine the reading thread may
    not get a core in time; waiting for it would cost more than reading).
    The file is handed out once.
    """
    key = _key(path)
    if key is None:
        return None
    with _lock:
        returned = _returned.pop(key, None)
        future = _ready.pop(key, None) if returned is None else None
    if returned is not None:
        return returned
    if future is None or not future.done():
        if future is not None:
            future.cancel()
        return None
    try:
        return future.result()
    except Exception:  # the normal read meets the error again and names the file
        return None


def take(path):
    """The prefetched (decompressed) bytes of ``path``, or None if not prefetched or failed.

    As `take_source`, never waiting. The bytes are handed out once.
    """
    source = take_source(path)
    if source is None:
        return None
    try:
        return source.full()
    except Exception:  # the normal read meets the error again and names the file
        return None


def put_back(path, source):
    """Hand a taken gzipped file's `FileBytes` back, for the next reader of the file.

    A reader that took a file and cannot use it (`bgcube.io.lean_fits`
    leaves an unusual file to astropy) gives it back, so that the file is
    not read again; the next `take` gets it. One file is kept at most (a
    file given back replaces the one before).
    """
    if source.gzipped and _key(path) is not None:
        with _lock:  # one file at most: the reader that falls back opens it next
            _returned.clear()
            _returned[_key(path)] = source


#: Bytes the readers of the last file needed (`note_needed`): how far the next file is
#: decompressed ahead; and that file's key.
_needed = [0]
_needed_file = [None]


def note_needed(n: int, path=None) -> None:
    """Tell the read-ahead how many (decompressed) bytes of a file a reader needed.

    The next files are decompressed that far ahead (and 10% more), in one
    call that holds no lock of the interpreter's: the thread reading ahead
    runs no Python to speak of, so it never keeps the reader waiting.
    Readers of several HDUs of one file (``path`` given: e.g. a run's
    effective area, then its events) count the furthest of them.
    """
    key = _key(path)
    if key is not None and key == _needed_file[0]:
        n = max(int(n), _needed[0])
    _needed[0], _needed_file[0] = int(n), key


def _read_ahead(path, hdu):
    """A file's `FileBytes`: all of it if ``hdu`` is None, else as far as the last reader needed."""
    source = FileBytes(path)
    if hdu is None:
        source.full()
    elif source.gzipped and _needed[0] > 0:
        try:
            source.ensure(_needed[0] + _needed[0] // 10)
        except Exception:  # the reader meets it again and reports it
            pass
    return source


def spare_core() -> bool:
    """Whether a core is likely free to read ahead on: the 1-minute load average is
    below the CPUs this process may use, less one half.

    On a machine whose cores are all busy, a second thread of this process
    gains nothing and costs the main thread the interpreter's lock, handed
    over at the pace of the operating system's scheduler.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not Linux: no way to tell, so read ahead
        return True
    return load < cpus - 0.5


class Prefetcher:
    """Read the files of coming runs ahead, in one background thread.

    Parameters
    ----------
    depth : int
        Files read ahead at most (each is held in memory, decompressed,
        until it is taken).
    enabled : bool
        False reads nothing ahead (`schedule` does nothing; see `spare_core`).

    Examples
    --------
    >>> with Prefetcher() as ahead:                      # doctest: +SKIP
    ...     for i, path in enumerate(paths):
    ...         ahead.schedule(paths[i + 1:i + 2])
    ...         process(path)                            # open_fits takes the bytes
    """

    def __init__(self, depth: int = 1, *, enabled: bool = True):
        self.depth = max(1, int(depth))
        self.enabled = enabled
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgcube-prefetch")
        self._mine = []

    def schedule(self, paths):
        """Read the first ``depth`` of ``paths`` ahead (dropping earlier reads not among them).

        Parameters
        ----------
        paths : sequence of str or path or (str or path, str or int) or None
            The files of the coming runs, in the order they will be opened
            (None entries are skipped); with an HDU, a gzipped file is
            decompressed only through that HDU (`FileBytes`).
        """
        if not self.enabled:
            return
        hdus = {}
        for entry in paths:
            path, hdu = entry if isinstance(entry, tuple) else (entry, None)
            if _key(path) is not None:
                hdus.setdefault(_key(path), hdu)
        wanted = list(hdus)[: self.depth]
        with _lock:
            for key in self._mine:
                if key not in wanted and key in _ready:
                    _ready.pop(key).cancel()
            self._mine = [k for k in self._mine if k in _ready]
            for key in wanted:
                if key not in _ready:
                    _ready[key] = self._pool.submit(_read_ahead, key, hdus[key])
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

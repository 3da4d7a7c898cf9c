"""A lean reader of one binary table HDU: the EVENTS of a DL3 file without astropy's overhead.

Reading a run through ``astropy.io.fits`` costs about twice the bytes'
decompression: every card of every header it passes is parsed, and each
table builds column definitions, a record array and its checks. A build
needs a few keywords and a few columns of one table (scalars, or
fixed-length arrays such as those of an ``AEFF_2D`` table), so
`read_table_hdu` walks the headers itself (a card's value is parsed only
when asked for, as astropy parses it), decompresses a gzipped file only
through that table (`bgcube.io.prefetch.FileBytes`: the response
functions after the events are never decompressed; the read-ahead thread
decompresses the next file as far as this one needed) and gives the
columns as NumPy views of the table's bytes.

It handles the plain case and nothing else: a file it does not fully
understand (a missing HDU, a damaged or truncated header, a scaled
column, a string or variable-length column, a TDIM that does not match its
column's repeat count, a long-string keyword, ...) gives None, and the
caller reads it with astropy as before, which reports any error in the
usual way. The objects it returns answer what bgcube's readers ask of an
astropy ``BinTableHDU`` (``name``, ``header``, ``columns``, ``data.field``);
anything else asked of the header goes to an astropy
`~astropy.io.fits.Header` made from the same bytes.
"""

from __future__ import annotations

import re

import numpy as np

from . import prefetch as _prefetch

__all__ = ["LeanHeader", "LeanTableHDU", "read_table_hdu", "read_header"]

_BLOCK = 2880
_CARD = 80
_KEYWORD = re.compile(r"[A-Z0-9_-]{0,8}\Z")
_VALUE = re.compile(
    r" *(?:'(?P<s>(?:[ -&(-~]|'')*)'|(?P<b>[TF])|"
    r"(?P<n>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[EDed][+-]?[0-9]+)?)) *(?:/.*)?\Z"
)
_COMMENTARY = ("", "COMMENT", "HISTORY", "CONTINUE")
_TFORM = re.compile(r" *([0-9]*)([LXBIJKAEDCMPQ])(.*)\Z")
_WIDTH = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16}
_NUMERIC = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
#: astropy's pattern of a TDIM value (`astropy.io.fits.column.TDIM_RE`).
_TDIM = re.compile(r"\(\s*(?P<dims>(?:\d+\s*)(?:,\s*\d+\s*)*\s*)\)\s*")


class _Unsupported(Exception):
    """The file needs astropy's reader."""


class LeanHeader:
    """The keywords of one FITS header, each card's value parsed when first asked for.

    Values are those astropy gives (`~astropy.io.fits.Card.value`): the
    first card of a keyword wins, keywords are looked up in upper case. A
    request this reader does not answer itself (a commentary or HIERARCH
    keyword, a value it does not parse, any other method of an astropy
    header) goes to `astropy`, the astropy header of the same bytes.

    Parameters
    ----------
    image : str
        The header's cards, 80 characters each, through the END card.
    """

    def __init__(self, image: str):
        self._image = image
        self._cards = {}
        self._values = {}
        self._astropy = None
        self.regular = True  # every card a plain keyword = value, commentary or END
        for i in range(0, len(image), _CARD):
            card = image[i : i + _CARD]
            key = card[:8].rstrip()
            if key in _COMMENTARY or key == "END":
                continue
            if card[8:10] != "= " or not _KEYWORD.match(key):
                self.regular = False
                continue
            self._cards.setdefault(key, card)

    def astropy(self):
        """The astropy `~astropy.io.fits.Header` of the same cards (made once)."""
        if self._astropy is None:
            from astropy.io import fits

            self._astropy = fits.Header.fromstring(self._image)
        return self._astropy

    def _lean(self, key):
        return self.regular and isinstance(key, str) and key.upper() not in _COMMENTARY

    def get(self, key, default=None):
        """The value of ``key``, or ``default`` if the header has no such keyword."""
        if not self._lean(key):
            return self.astropy().get(key, default)
        key = key.upper()
        if key not in self._cards:
            return default
        return self._value(key)

    def __getitem__(self, key):
        if not self._lean(key):
            return self.astropy()[key]
        key = key.upper()
        if key not in self._cards:
            raise KeyError(f"Keyword {key!r} not found.")
        return self._value(key)

    def __contains__(self, key):
        if not self._lean(key):
            return key in self.astropy()
        return key.upper() in self._cards

    def __iter__(self):
        return iter(self.astropy())

    def __len__(self):
        return len(self.astropy())

    def __getattr__(self, name):  # everything else an astropy header offers
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.astropy(), name)

    def __repr__(self):
        return repr(self.astropy())

    def _value(self, key):
        try:
            return self._values[key]
        except KeyError:
            pass
        card = self._cards[key]
        m = _VALUE.match(card, 10)
        if m is None or (m["s"] is not None and m["s"].rstrip(" ").endswith("&")):
            value = self.astropy()[key]  # anything unusual: astropy's parse
        elif m["s"] is not None:
            value = m["s"].rstrip(" ").replace("''", "'")
        elif m["b"] is not None:
            value = m["b"] == "T"
        else:
            number = m["n"].upper().replace("D", "E")
            try:
                value = int(number)
            except ValueError:
                value = float(number)
        self._values[key] = value
        return value


class LeanColumn:
    """A column of a `LeanTableHDU`: ``name``, ``format`` (TFORM) and ``unit`` (TUNIT or None).

    ``dtype`` is None for a column this reader does not give (`_LeanData.field`
    refuses it); ``shape`` is the shape of one row's cell: ``()`` for a
    scalar, ``(r,)`` for ``rE`` etc. without TDIM, the TDIM reversed (as
    astropy gives it, C order) with one.
    """

    def __init__(self, name, format, unit, offset, dtype, shape=()):
        self.name, self.format, self.unit = name, format, unit
        self.offset, self.dtype, self.shape = offset, dtype, tuple(shape)


class LeanColumns(list):
    """The columns of a `LeanTableHDU`, in order; ``names`` as astropy's ``ColDefs`` has."""

    @property
    def names(self) -> list[str]:
        """Column names (TTYPE)."""
        return [c.name for c in self]


class _LeanData:
    """The rows of a table: ``field(name)`` as astropy's ``FITS_rec.field`` for plain columns
    (numbers, one per row or a fixed-length array per row)."""

    def __init__(self, data, columns, n_rows, row_bytes):
        self._data, self._columns = data, columns
        self._n, self._row = n_rows, row_bytes

    def field(self, name):
        """One column's values (a big-endian view of the table's bytes, read-only).

        Shape ``(NAXIS2,) + column.shape``, as astropy gives it.
        """
        matches = [c for c in self._columns if c.name == name]
        matches = matches or [c for c in self._columns if c.name.upper() == str(name).upper()]
        if not matches or matches[0].dtype is None:
            raise KeyError(f"no plain column {name!r}")
        col = matches[0]
        strides = [self._row]
        step = col.dtype.itemsize
        for size in reversed(col.shape):  # C order within a cell
            strides.insert(1, step)
            step *= size
        return np.ndarray(
            (self._n, *col.shape),
            dtype=col.dtype,
            buffer=self._data,
            offset=col.offset,
            strides=tuple(strides),
        )


class LeanTableHDU:
    """One binary table HDU read by `read_table_hdu`: ``name``, ``header``, ``columns``, ``data``.

    Parameters
    ----------
    header : LeanHeader
    data : bytes-like
        The table's rows (NAXIS1 x NAXIS2 bytes); the columns are views of it.
    """

    def __init__(self, header: LeanHeader, data):
        self.header = header
        self.name = str(header.get("EXTNAME", ""))
        n_rows, row_bytes = int(header["NAXIS2"]), int(header["NAXIS1"])
        self.columns = _columns(header, row_bytes)
        self.data = _LeanData(data, self.columns, n_rows, row_bytes)

    def __repr__(self):
        return f"<LeanTableHDU {self.name!r}: {len(self.columns)} columns>"


def _columns(header, row_bytes):
    """The columns of a BINTABLE header; `_Unsupported` unless their widths add up."""
    columns, offset = LeanColumns(), 0
    for i in range(1, int(header["TFIELDS"]) + 1):
        tform = header.get(f"TFORM{i}")
        m = _TFORM.match(tform) if isinstance(tform, str) else None
        if m is None:
            raise _Unsupported(f"TFORM{i}")
        repeat = int(m[1]) if m[1] else 1
        code = m[2]
        if code == "X":
            width = (repeat + 7) // 8
        elif code in "PQ":
            width = 8 if code == "P" else 16
        else:
            width = repeat * _WIDTH[code]
        shape = None
        if (
            code in _NUMERIC
            and not m[3].strip()
            and not any(f"{k}{i}" in header for k in ("TSCAL", "TZERO"))
        ):
            shape = _cell_shape(repeat, header.get(f"TDIM{i}"))
        name = header.get(f"TTYPE{i}", "")
        unit = header.get(f"TUNIT{i}")
        dtype = None if shape is None else np.dtype(_NUMERIC[code])
        columns.append(LeanColumn(str(name), tform, unit, offset, dtype, shape or ()))
        offset += width
    if offset != row_bytes:
        raise _Unsupported("column widths do not add up to NAXIS1")
    return columns


def _cell_shape(repeat, tdim):
    """The shape of a numeric column's cell, or None where astropy decides (an
    empty column, a TDIM that is no string, unparsable or not ``repeat`` values)."""
    if tdim is None:
        return () if repeat == 1 else ((repeat,) if repeat > 1 else None)
    m = _TDIM.match(tdim) if isinstance(tdim, str) and repeat > 1 else None
    if m is None:
        return None
    shape = tuple(int(d) for d in m["dims"].split(","))[::-1]
    return shape if int(np.prod(shape)) == repeat else None


def _read_header(source, offset):
    """The header starting at ``offset`` and the offset of its data."""
    end = offset
    while True:
        if not source.ensure(end + _BLOCK):
            raise _Unsupported("no END card")
        block = bytes(source.buffer[end : end + _BLOCK])
        end += _BLOCK
        for i in range(0, _BLOCK, _CARD):
            if block[i : i + 8] == b"END     ":
                try:
                    image = bytes(source.buffer[offset : end - _BLOCK + i + _CARD]).decode("ascii")
                except UnicodeDecodeError:
                    raise _Unsupported("non-ASCII header") from None
                return LeanHeader(image), end


def _data_bytes(header, first):
    """Bytes of an HDU's data (without the padding to a block)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    if first and header.get("GROUPS") is True:
        raise _Unsupported("random groups")
    size = 1
    for i in range(1, naxis + 1):
        size *= int(header[f"NAXIS{i}"])
    size = (
        abs(int(header["BITPIX"]))
        // 8
        * int(header.get("GCOUNT", 1))
        * (int(header.get("PCOUNT", 0)) + size)
    )
    return size


def _locate(source, hdu):
    """Header, data offset and data size of the HDU ``hdu`` (name or index) of a file."""
    if isinstance(hdu, str):
        name, index = hdu.strip().upper(), None
        if name == "PRIMARY":
            raise _Unsupported("the primary HDU is no table")
    elif isinstance(hdu, (int, np.integer)) and not isinstance(hdu, bool) and hdu >= 0:
        name, index = None, int(hdu)
    else:
        raise _Unsupported("HDU given neither as a name nor as an index")
    offset, i = 0, 0
    while True:
        try:
            header, start = _read_header(source, offset)
            if i == 0 and header.get("SIMPLE") is not True:
                raise _Unsupported("not a FITS file")
            size = _data_bytes(header, i == 0)
        except (KeyError, ValueError, TypeError) as exc:
            raise _Unsupported(str(exc)) from None
        if not header.regular:
            raise _Unsupported("irregular header")
        extname = header.get("EXTNAME") if i > 0 else None
        found = (
            index == i
            if name is None
            else (isinstance(extname, str) and extname.strip().upper() == name)
        )
        if found:
            return header, start, size
        offset = start + -(-size // _BLOCK) * _BLOCK
        i += 1


def read_table_hdu(
    path, hdu="EVENTS", columns=None, *, read_ahead: bool = True, hand_on: bool = False
) -> LeanTableHDU | None:
    """A binary table HDU of a FITS file (gzipped or not), or None where astropy must read it.

    Takes the file's bytes from `bgcube.io.prefetch` where another thread
    read them ahead; the file's decompression stops after the table's data.

    Parameters
    ----------
    path : str or path
    hdu : str or int
        The HDU's name (EXTNAME, any case) or index.
    columns : sequence of str, optional
        Columns that will be read: None is given unless each one the table
        has is a number or a fixed-length array of numbers (TFORM ``E``,
        ``96E``, ...; no TSCAL or TZERO; a TDIM, if any, that holds the
        column's repeat count).
    read_ahead : bool
        Tell `bgcube.io.prefetch` how far this file was needed, so that the
        next files are decompressed as far (the event lists of a build);
        False for a read outside that sequence.
    hand_on : bool
        Give the file's bytes decompressed so far to the next reader of the
        same file (`bgcube.io.prefetch.put_back`; the table then holds a
        copy of its own bytes): a build that reads a run's effective area
        and then its events decompresses the file once.

    Returns
    -------
    table : LeanTableHDU or None
        None for a file this reader does not handle (or cannot read at
        all): astropy's reader gives the answer, or the error.
    """
    source = _prefetch.take_source(path)
    try:
        if source is None:
            source = _prefetch.FileBytes(path)
        header, start, size = _locate(source, hdu)
        if header.get("XTENSION") != "BINTABLE" or int(header.get("BITPIX", 0)) != 8:
            raise _Unsupported("not a binary table")
        if int(header.get("NAXIS", 0)) != 2 or int(header.get("GCOUNT", 1)) != 1:
            raise _Unsupported("not a plain binary table")
        n_table = int(header["NAXIS1"]) * int(header["NAXIS2"])
        if not source.ensure(start + n_table):
            raise _Unsupported("truncated data")
        # a view, not a copy, unless the buffer is handed on (its next reader may
        # grow it, which a view would forbid)
        view = memoryview(source.buffer).toreadonly()[start : start + n_table]
        table = LeanTableHDU(header, memoryview(bytes(view)) if hand_on else view)
        if read_ahead:
            _prefetch.note_needed(start + n_table, path)
    except Exception:  # unusual or damaged: astropy's read answers or reports it
        if source is not None:
            _prefetch.put_back(path, source)  # the astropy read takes its bytes
        return None
    wanted = {c.upper() for c in columns or ()}
    if any(c.name.upper() in wanted and c.dtype is None for c in table.columns):
        _prefetch.put_back(path, source)
        return None
    if hand_on:
        view.release()
        _prefetch.put_back(path, source)
    return table


def read_header(path, hdu="EVENTS") -> LeanHeader | None:
    """The header of one HDU of a FITS file (gzipped or not), or None where astropy must read it.

    The file is decompressed only through that header.

    Parameters
    ----------
    path : str or path
    hdu : str or int
        The HDU's name (EXTNAME, any case) or index.

    Returns
    -------
    header : LeanHeader or None
        None for a file this reader does not handle (or cannot read).
    """
    try:
        header, _, _ = _locate(_prefetch.FileBytes(path), hdu)
    except Exception:  # unusual or damaged: astropy's read answers or reports it
        return None
    return header

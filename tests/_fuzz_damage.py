"""Random damage to valid FITS and ECSV files, for the reader fuzz tests.

A damage is a short list of operations drawn with hypothesis and applied
to the bytes of a valid file, in three stages:

1. table and image edits made through astropy (drop, add or rename a
   column, resize or reverse a vector column, put NaN or infinity in it,
   swap the lo/hi columns of an axis, garbage units, zero or two rows,
   reshape an image, set a header keyword to a value of the wrong type);
2. raw edits of 80-character header cards, which astropy would refuse to
   write (any keyword of the file, TDIMn and NAXISn included, set to a
   garbage value or blanked out);
3. byte edits of the whole file: a byte overwritten, gzip compression, and
   truncation at a random offset (of the compressed file too).

ECSV files get the same column edits through an astropy Table, then text
edits (a line deleted or replaced, a value or a datatype changed,
truncation). Every operation is described by a tuple that hypothesis
prints with the failing example.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table
from hypothesis import strategies as st

__all__ = ["FitsDamage", "EcsvDamage", "HARMLESS"]

#: Names a damaged column may get: every name some bgcube reader looks for,
#: so that renames can also make a file look like another layout.
KNOWN_NAMES = (
    "DETX_LO",
    "DETX_HI",
    "DETY_LO",
    "DETY_HI",
    "ENERG_LO",
    "ENERG_HI",
    "X_LO",
    "Y_LO",
    "BKG",
    "BGD",
    "Bgd",
    "COUNTS",
    "LIVETIME",
    "DATA",
    "E_MIN",
    "E_MAX",
    "ENERGY",
    "CHANNEL",
    "RA",
    "DEC",
    "DETX",
    "DETY",
    "TIME",
    "START",
    "STOP",
    "OBS_ID",
    "HDU_TYPE",
    "FILE_DIR",
    "FILE_NAME",
    "HDU_NAME",
    "ZEN_PNT",
    "ALT_PNT",
    "AZ_PNT",
    "ONTIME",
    "RADIUS",
    "GLON",
    "GLAT",
    "NAME",
    "GROUP_ID",
    "ZEN_MIN",
    "ZEN_MAX",
    "AZ_MIN",
    "AZ_MAX",
)

#: A name no reader looks for: adding such a column must change nothing.
UNRELATED = "FUZZ_EXTRA"

#: Unit strings: garbage, wrong kinds, and some valid ones.
UNITS = (
    "",
    "garbage",
    "m",
    "furlong",
    "TeV",
    "MeV",
    "deg",
    "rad",
    "s",
    "h",
    "1/s/MeV/sr",
    "MeV-1 s-1 sr-1",
    "1 / (s sr TeV)",
    "1/(s",
    "ct",
    "Jy",
    "deg**2",
    "%",
    "   ",
    "10**",
    "log(TeV)",
)

#: Raw header values (as FITS card text) of the wrong type or range.
CARD_VALUES = (
    "'garbage '",
    "''",
    "'        '",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "1.5",
    "-7.25",
    "1E+400",
    "NAN",
    "T",
    "F",
    "'(1,2)'",
    "'(0)'",
    "'(3,4,5,6)'",
    "'(5,4,3)'",
    "'(4,3,5)'",
    "'(99999,1,1)'",
    "'(1,1'",
    "'deg'",
    "'TeV'",
    "'1/(s'",
    "'furlong'",
    "99999",
    "-99999999999",
    "'RADEC'",
    "'ALTAZ'",
    "'ONTIME'",
    "'energy-fastest'",
    "'GADF'",
    "'BKG_3D'",
    "'BACKGROUND'",
)

#: Keywords that no reader uses: editing them must change nothing.
HARMLESS = frozenset({"CREATOR", "HDUDOC", "COMMENT", "HISTORY", "DATE", "ORIGIN", "FUZZKEY"})

#: Keywords that describe the layout of the bytes; only raw card edits touch them.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|TFIELDS|THEAP|"
    r"T(TYPE|FORM|UNIT|DIM|DISP|NULL|SCAL|ZERO)\d+)$"
)

_BLOCK = 2880
_CARD = 80


@contextlib.contextmanager
def _quiet():
    """Hide astropy's warnings while the damage is being made."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------
# FITS
# ---------------------------------------------------------------------------
class FitsDamage:
    """Draws and applies damage to one valid FITS file.

    Parameters
    ----------
    data : bytes
        The valid file (not compressed).
    """

    def __init__(self, data: bytes):
        self.valid = data
        with fits.open(io.BytesIO(data)) as hdulist:
            self.hdus = []
            for hdu in hdulist:
                columns = []
                if isinstance(hdu, fits.BinTableHDU):
                    columns = [(c.name, c.format.repeat or 1, c.format.format) for c in hdu.columns]
                keys = [k for k in hdu.header if k not in ("", "END")]
                self.hdus.append(
                    {
                        "name": hdu.name,
                        "table": isinstance(hdu, fits.BinTableHDU),
                        "columns": columns,
                        "keys": keys,
                        "image": hdu.is_image and hdu.data is not None,
                    }
                )

    # -- drawing ---------------------------------------------------------
    def draw(self, data, max_ops=3):
        """Draw a list of damage operations (``data`` is hypothesis' ``st.data()``)."""
        n = data.draw(st.integers(1, max_ops), label="n_ops")
        return [self._draw_op(data) for _ in range(n)]

    def _draw_op(self, data):
        tables = [i for i, h in enumerate(self.hdus) if h["table"] and h["columns"]]
        images = [i for i, h in enumerate(self.hdus) if h["image"]]
        kinds = [
            "set_card",
            "blank_card",
            "set_keyword",
            "overwrite_byte",
            "truncate",
            "gzip",
            "gzip_truncate",
        ]
        if tables:
            kinds += [
                "drop_column",
                "add_column",
                "rename_column",
                "resize_column",
                "set_unit",
                "nonfinite",
                "swap_lo_hi",
                "reverse_column",
                "rows",
                "scale_column",
            ]
        if images:
            kinds += ["reshape_image"]
        kind = data.draw(st.sampled_from(kinds), label="kind")
        if kind in ("truncate", "gzip_truncate"):
            return (kind, data.draw(st.floats(0, 1), label="fraction"))
        if kind == "gzip":
            return (kind,)
        if kind == "overwrite_byte":
            return (kind, data.draw(st.floats(0, 1)), data.draw(st.integers(0, 255)))
        if kind == "reshape_image":
            return (
                kind,
                data.draw(st.sampled_from(images)),
                data.draw(st.sampled_from(["flat", "2d", "swap", "4d", "int", "empty"])),
            )
        if kind in ("set_card", "blank_card", "set_keyword"):
            index = data.draw(st.integers(0, len(self.hdus) - 1), label="hdu")
            keys = self.hdus[index]["keys"]
            if kind == "set_keyword":  # astropy rewrites the structure itself: cards do that
                keys = [k for k in keys if not _STRUCTURAL.match(k)]
            key = data.draw(st.sampled_from(keys + ["FUZZKEY"]), label="keyword")
            if kind == "blank_card":
                return (kind, index, key)
            if kind == "set_card":
                value = data.draw(
                    st.sampled_from(CARD_VALUES)
                    | st.text("abcXYZ019 ._-()/*", max_size=12).map(lambda t: f"'{t}'"),
                    label="value",
                )
                return (kind, index, key, value)
            value = data.draw(
                st.sampled_from([None, "garbage", "", -1, 0, 1e30, -1.5, True, 12345678901]),
                label="value",
            )
            return (kind, index, key, value)
        index = data.draw(st.sampled_from(tables), label="hdu")
        names = [c[0] for c in self.hdus[index]["columns"]]
        column = data.draw(st.sampled_from(names), label="column")
        if kind == "drop_column":
            return (kind, index, column)
        if kind == "add_column":
            name = data.draw(st.sampled_from((UNRELATED, *KNOWN_NAMES)), label="name")
            return (kind, index, name, data.draw(st.integers(1, 8), label="repeat"))
        if kind == "rename_column":
            new = data.draw(
                st.sampled_from(KNOWN_NAMES) | st.just(column.lower()) | st.just(column + "X"),
                label="new_name",
            )
            return (kind, index, column, new)
        if kind == "resize_column":
            return (
                kind,
                index,
                column,
                data.draw(st.integers(0, 12), label="repeat"),
                data.draw(st.booleans(), label="keep_tdim"),
            )
        if kind == "set_unit":
            return (kind, index, column, data.draw(st.sampled_from(UNITS), label="unit"))
        if kind == "nonfinite":
            return (
                kind,
                index,
                column,
                data.draw(st.sampled_from([np.nan, np.inf, -np.inf])),
                data.draw(st.integers(0, 10_000), label="position"),
            )
        if kind == "swap_lo_hi":
            return (kind, index, data.draw(st.sampled_from(self._pairs(index) or [None])))
        if kind == "reverse_column":
            return (kind, index, column)
        if kind == "rows":
            return (kind, index, data.draw(st.sampled_from([0, 2]), label="n_rows"))
        return (kind, index, column, data.draw(st.sampled_from([0.0, -1.0, 1e-300, 1e300])))

    def _tdim(self, index, column):
        with fits.open(io.BytesIO(self.valid)) as hdulist:
            dim = hdulist[index].columns[column].dim
        return f"'{dim}'" if dim else None

    def _pairs(self, index):
        names = {c[0].upper(): c[0] for c in self.hdus[index]["columns"]}
        pairs = []
        for lo, hi in (("_LO", "_HI"), ("_MIN", "_MAX")):
            for name in names:
                if name.endswith(lo) and name[: -len(lo)] + hi in names:
                    pairs.append((names[name], names[name[: -len(lo)] + hi]))
        if "START" in names and "STOP" in names:
            pairs.append((names["START"], names["STOP"]))
        return pairs

    # -- applying ----------------------------------------------------------
    def apply(self, ops) -> bytes:
        """The damaged file's bytes (possibly gzipped, possibly truncated)."""
        structural = [op for op in ops if op[0] not in _CARD_OPS | _BYTE_OPS]
        data = self.valid
        if structural:
            data = _apply_structural(data, structural)
        for op in structural:  # a resized column keeps its old TDIM (astropy would refuse)
            if op[0] == "resize_column" and op[4]:
                data = _set_column_card(data, op[1], op[2], "TDIM", self._tdim(op[1], op[2]))
        for op in ops:
            if op[0] in _CARD_OPS:
                data = _apply_card(data, op)
        for op in ops:
            if op[0] in _BYTE_OPS:
                data = _apply_bytes(data, op)
        return data


_CARD_OPS = frozenset({"set_card", "blank_card"})
_BYTE_OPS = frozenset({"overwrite_byte", "truncate", "gzip", "gzip_truncate"})


def _column_array(hdu, column):
    return np.array(hdu.data[column.name]) if hdu.data is not None else None


def _rebuild_table(hdu, columns, nrows=None):
    """A BinTableHDU with these `fits.Column` objects and the old informational keywords."""
    header = hdu.header.copy()
    for key in list(header):
        if key.startswith(_COLUMN_KEYWORDS):
            del header[key]
    return fits.BinTableHDU.from_columns(columns, header=header, nrows=nrows or 0, name=hdu.name)


_COLUMN_KEYWORDS = ("TTYPE", "TFORM", "TUNIT", "TDIM", "TDISP", "TNULL", "TSCAL", "TZERO")


def _columns_of(hdu):
    out = []
    for col in hdu.columns:
        array = _column_array(hdu, col)
        out.append(
            fits.Column(name=col.name, format=col.format, unit=col.unit, dim=col.dim, array=array)
        )
    return out


#: What astropy raises when asked to build a table or image it cannot write.
_REFUSED = (ValueError, TypeError, KeyError, IndexError, fits.VerifyError)


def _apply_structural(data, ops):
    with _quiet():
        with fits.open(io.BytesIO(data)) as hdulist:
            hdulist = fits.HDUList([h.copy() for h in hdulist])
        for op in ops:
            try:
                _structural_op(hdulist, op)
            except _REFUSED:  # astropy cannot build this damage: the op does nothing
                pass
        buffer = io.BytesIO()
        try:
            hdulist.writeto(buffer, output_verify="ignore")
        except _REFUSED:
            return data
        return buffer.getvalue()


def _structural_op(hdulist, op):
    kind, index = op[0], op[1]
    hdu = hdulist[index]
    if kind == "set_keyword":
        key, value = op[2], op[3]
        if value is None:
            hdu.header.remove(key, ignore_missing=True)
        elif key not in ("", "END"):
            try:
                hdu.header[key] = value
            except (ValueError, KeyError):  # a structural keyword astropy guards
                pass
        return
    if kind == "reshape_image":
        image = hdulist[op[1]]
        array = np.asarray(image.data)
        how = op[2]
        if how == "flat":
            image.data = array.ravel()
        elif how == "2d":
            image.data = array.reshape(array.shape[0], -1)
        elif how == "swap":
            image.data = np.ascontiguousarray(np.swapaxes(array, 0, -1))
        elif how == "4d":
            image.data = array[np.newaxis]
        elif how == "int":
            image.data = array.astype(np.int16)
        else:
            image.data = None
        return
    if not isinstance(hdu, fits.BinTableHDU):
        return
    columns = _columns_of(hdu)
    nrows = hdu.data.shape[0] if hdu.data is not None else 0
    names = [c.name for c in columns]
    if kind == "drop_column":
        columns = [c for c in columns if c.name != op[2]]
    elif kind == "add_column":
        name, repeat = _unique(op[2], names), op[3]
        rng = np.random.default_rng(repeat)
        array = rng.normal(size=(nrows, repeat)) if repeat > 1 else rng.normal(size=nrows)
        columns.append(fits.Column(name=name, format=f"{repeat}D", array=array))
    elif kind == "rename_column":
        old, new = op[2], _unique(op[3], names)
        columns = [_replace(c, name=new) if c.name == old else c for c in columns]
    elif kind == "resize_column":
        columns = [_resized(c, op[3], nrows) if c.name == op[2] else c for c in columns]
    elif kind == "set_unit":
        columns = [_replace(c, unit=op[3]) if c.name == op[2] else c for c in columns]
    elif kind == "nonfinite":
        columns = [_nonfinite(c, op[3], op[4]) if c.name == op[2] else c for c in columns]
    elif kind == "swap_lo_hi" and op[2] is not None and set(op[2]) <= set(names):
        by_name = {c.name: c for c in columns}
        lo, hi = op[2]
        arrays = {lo: by_name[hi].array, hi: by_name[lo].array}
        columns = [_replace(c, array=arrays[c.name]) if c.name in arrays else c for c in columns]
    elif kind == "reverse_column":
        columns = [_reversed(c) if c.name == op[2] else c for c in columns]
    elif kind == "rows":
        n = op[2]
        columns = [_with_rows(c, n, nrows) for c in columns]
        nrows = n
    elif kind == "scale_column":
        columns = [_scaled(c, op[3]) if c.name == op[2] else c for c in columns]
    hdulist[index] = _rebuild_table(hdu, columns, nrows)


def _unique(name, names):
    """``name``, or ``name`` with a suffix if a column already has it (case-insensitive)."""
    taken = {n.upper() for n in names}
    candidate, i = name, 1
    while candidate.upper() in taken:
        candidate, i = f"{name}{i}", i + 1
    return candidate


def _replace(col, **changes):
    args = {
        "name": col.name,
        "format": col.format,
        "unit": col.unit,
        "dim": col.dim,
        "array": col.array,
    }
    args.update(changes)
    return fits.Column(**args)


def _numeric(col):
    return col.array is not None and np.asarray(col.array).dtype.kind in "fiu"


def _resized(col, repeat, nrows):
    if not _numeric(col) or nrows == 0:
        return col
    flat = np.asarray(col.array, dtype=np.float64).reshape(nrows, -1)
    if repeat <= flat.shape[1]:
        array = flat[:, :repeat]
    else:
        pad = np.linspace(1.0, 2.0, repeat - flat.shape[1])[None, :].repeat(nrows, axis=0)
        array = np.concatenate([flat, pad], axis=1)
    if repeat == 0:
        return fits.Column(name=col.name, format="0D", unit=col.unit)
    # an old TDIM is put back as a raw card afterwards (see FitsDamage.apply)
    return fits.Column(
        name=col.name,
        format=f"{repeat}D",
        unit=col.unit,
        array=array if repeat > 1 else array[:, 0],
    )


def _nonfinite(col, value, position):
    if not _numeric(col) or np.asarray(col.array).size == 0:
        return col
    array = np.array(col.array, dtype=np.float64)
    array.reshape(-1)[position % array.size] = value
    return fits.Column(
        name=col.name, format=f"{col.format.repeat or ''}D", unit=col.unit, dim=col.dim, array=array
    )


def _reversed(col):
    if not _numeric(col):
        return col
    array = np.array(col.array)
    return _replace(col, array=array[..., ::-1] if array.ndim > 1 else array[::-1])


def _scaled(col, factor):
    if not _numeric(col):
        return col
    array = np.asarray(col.array, dtype=np.float64) * factor
    fmt = f"{col.format.repeat or ''}D"
    return fits.Column(name=col.name, format=fmt, unit=col.unit, dim=col.dim, array=array)


def _with_rows(col, n, nrows):
    array = np.asarray(col.array) if col.array is not None else None
    if array is None or nrows == 0:
        return col
    if n == 0:
        array = array[:0]
    else:
        array = np.concatenate([array, array[-1:]])
    return _replace(col, array=array)


# -- raw header cards ------------------------------------------------------
def _header_spans(data):
    """(start, end) byte offsets of each HDU's header, walking the FITS blocks."""
    spans = []
    offset = 0
    while offset + _BLOCK <= len(data):
        start = offset
        end = None
        while offset + _BLOCK <= len(data):
            block = data[offset : offset + _BLOCK]
            offset += _BLOCK
            for i in range(0, _BLOCK, _CARD):
                if block[i : i + 8] == b"END     ":
                    end = offset
                    break
            if end is not None:
                break
        if end is None:
            break
        spans.append((start, end))
        offset = end + _data_size(data[start:end])
    return spans


def _data_size(header_bytes):
    """Bytes of data (padded to blocks) after a header, from its NAXIS/PCOUNT cards."""
    cards = {}
    for i in range(0, len(header_bytes), _CARD):
        card = header_bytes[i : i + _CARD].decode("ascii", "replace")
        key = card[:8].strip()
        if card[8:10] == "= ":
            cards[key] = card[10:].split("/")[0].strip()
    try:
        naxis = int(cards.get("NAXIS", "0"))
        if naxis == 0:
            return 0
        size = abs(int(cards.get("BITPIX", "8"))) // 8
        for i in range(1, naxis + 1):
            size *= int(cards.get(f"NAXIS{i}", "0"))
        size = (size + int(cards.get("PCOUNT", "0"))) * int(cards.get("GCOUNT", "1"))
    except ValueError:
        return 0
    return -(-size // _BLOCK) * _BLOCK


def _card(key, value):
    return f"{key:<8}= {value:>20}"[:_CARD].ljust(_CARD).encode("ascii", "replace")


def _apply_card(data, op):
    """Set (``set_card``) or blank out (``blank_card``) a raw header card of HDU ``op[1]``."""
    kind, index, key = op[0], op[1], op[2]
    spans = _header_spans(data)
    if index >= len(spans):
        return data
    start, end = spans[index]
    target = f"{key:<8}".encode("ascii", "replace")[:8]
    out = bytearray(data)
    for i in range(start, end, _CARD):
        if out[i : i + 8] == target:
            out[i : i + _CARD] = b" " * _CARD if kind == "blank_card" else _card(key, op[3])
            return bytes(out)
        if out[i : i + 8] == b"END     ":
            if kind == "set_card":  # a new keyword before END; the header grows if needed
                cards = bytes(out[start:i]) + _card(key, op[3]) + b"END".ljust(_CARD)
                cards = cards.ljust(-(-len(cards) // _BLOCK) * _BLOCK, b" ")
                return bytes(out[:start]) + cards + bytes(out[end:])
            break
    return bytes(out)


def _set_column_card(data, index, column, prefix, value):
    """Set ``<prefix>n`` of the column named ``column`` in HDU ``index`` (None: no change)."""
    if value is None:
        return data
    start, end = _header_spans(data)[index]
    for i in range(start, end, _CARD):
        card = data[i : i + _CARD].decode("ascii", "replace")
        if (
            card.startswith("TTYPE")
            and card[10:].split("/")[0].strip().strip("'").strip() == column
        ):
            n = card[5:8].strip()
            return _apply_card(data, ("set_card", index, f"{prefix}{n}", value))
    return data


# -- bytes -----------------------------------------------------------------
def _apply_bytes(data, op):
    kind = op[0]
    if kind == "truncate":
        return data[: int(op[1] * len(data))]
    if kind == "overwrite_byte":
        if not data:
            return data
        out = bytearray(data)
        out[min(int(op[1] * len(data)), len(data) - 1)] = op[2]
        return bytes(out)
    compressed = gzip.compress(data, mtime=0)
    if kind == "gzip":
        return compressed
    return compressed[: int(op[1] * len(compressed))]


# ---------------------------------------------------------------------------
# ECSV
# ---------------------------------------------------------------------------
class EcsvDamage:
    """Draws and applies damage to one valid ECSV file.

    Parameters
    ----------
    text : str
        The valid file.
    """

    def __init__(self, text: str):
        self.valid = text
        self.table = Table.read(text, format="ascii.ecsv")
        self.lines = text.splitlines()

    def draw(self, data, max_ops=3):
        """Draw a list of damage operations (``data`` is hypothesis' ``st.data()``)."""
        n = data.draw(st.integers(1, max_ops), label="n_ops")
        return [self._draw_op(data) for _ in range(n)]

    def _draw_op(self, data):
        names = self.table.colnames
        kind = data.draw(
            st.sampled_from(
                [
                    "drop_column",
                    "add_column",
                    "rename_column",
                    "set_unit",
                    "nonfinite",
                    "swap_columns",
                    "scale_column",
                    "no_rows",
                    "delete_line",
                    "replace_line",
                    "replace_value",
                    "set_datatype",
                    "truncate",
                    "overwrite_char",
                ]
            ),
            label="kind",
        )
        if kind in ("drop_column", "set_unit", "nonfinite", "scale_column", "rename_column"):
            column = data.draw(st.sampled_from(names), label="column")
            if kind == "drop_column":
                return (kind, column)
            if kind == "set_unit":
                return (kind, column, data.draw(st.sampled_from(UNITS)))
            if kind == "nonfinite":
                return (
                    kind,
                    column,
                    data.draw(st.sampled_from([np.nan, np.inf, -np.inf])),
                    data.draw(st.integers(0, 100)),
                )
            if kind == "scale_column":
                return (kind, column, data.draw(st.sampled_from([0.0, -1.0, 1e300, 400.0])))
            return (kind, column, data.draw(st.sampled_from(KNOWN_NAMES) | st.just(column.lower())))
        if kind == "add_column":
            return (kind, data.draw(st.sampled_from((UNRELATED, *KNOWN_NAMES))))
        if kind == "swap_columns":
            return (kind, data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names)))
        if kind == "no_rows":
            return (kind,)
        if kind in ("truncate", "overwrite_char"):
            return (
                kind,
                data.draw(st.floats(0, 1)),
                data.draw(st.sampled_from(list("x0-9.#: '\"\n[]{}"))),
            )
        if kind == "set_datatype":
            return (
                kind,
                data.draw(st.sampled_from(names)),
                data.draw(
                    st.sampled_from(
                        ["int8", "string", "bool", "garbage", "float16", "uint64", "complex128"]
                    )
                ),
            )
        return (
            kind,
            data.draw(st.integers(0, 10_000)),
            data.draw(
                st.sampled_from(
                    [
                        "",
                        "garbage",
                        "# %ECSV 0.9",
                        "1 2 3",
                        "nan",
                        "---",
                        "  - {name: X}",
                        "a b",
                        "1e999",
                    ]
                )
            ),
        )

    def apply(self, ops) -> str:
        """The damaged file's text."""
        table_ops = [op for op in ops if op[0] in _ECSV_TABLE_OPS]
        text = self.valid
        if table_ops:
            table = self.table.copy()
            for op in table_ops:
                table = _ecsv_table_op(table, op)
            buffer = io.StringIO()
            with _quiet():
                table.write(buffer, format="ascii.ecsv")
            text = buffer.getvalue()
        for op in ops:
            if op[0] not in _ECSV_TABLE_OPS:
                text = _ecsv_text_op(text, op)
        return text


_ECSV_TABLE_OPS = frozenset(
    {
        "drop_column",
        "add_column",
        "rename_column",
        "set_unit",
        "nonfinite",
        "swap_columns",
        "scale_column",
        "no_rows",
    }
)


def _ecsv_table_op(table, op):
    with _quiet():
        try:
            return _ecsv_table_edit(table, op)
        except (ValueError, TypeError):  # e.g. a unit astropy refuses to attach
            return table


def _ecsv_table_edit(table, op):
    kind = op[0]
    if kind == "drop_column" and op[1] in table.colnames:
        table.remove_column(op[1])
    elif kind == "add_column":
        name = _unique(op[1], table.colnames)
        table[name] = np.linspace(-1.0, 1.0, len(table))
    elif kind == "rename_column" and op[1] in table.colnames:
        new = _unique(op[2], table.colnames)
        table.rename_column(op[1], new)
    elif kind == "set_unit" and op[1] in table.colnames:
        table[op[1]].unit = op[2] or None
    elif kind == "nonfinite" and op[1] in table.colnames and len(table):
        col = table[op[1]]
        if col.dtype.kind in "fiu":
            values = np.array(col, dtype=np.float64)
            values[op[3] % len(values)] = op[2]
            table[op[1]] = values
            table[op[1]].unit = col.unit
    elif kind == "scale_column" and op[1] in table.colnames:
        col = table[op[1]]
        if col.dtype.kind in "fiu":
            table[op[1]] = np.asarray(col, dtype=np.float64) * op[2]
            table[op[1]].unit = col.unit
    elif kind == "swap_columns":
        a, b = op[1], op[2]
        if a in table.colnames and b in table.colnames and a != b:
            col_a, col_b = table[a].copy(), table[b].copy()
            table.replace_column(a, col_b)
            table.replace_column(b, col_a)
    elif kind == "no_rows":
        table = table[:0]
    return table


def _ecsv_text_op(text, op):
    kind = op[0]
    if kind == "truncate":
        return text[: int(op[1] * len(text))]
    if kind == "overwrite_char":
        if not text:
            return text
        i = min(int(op[1] * len(text)), len(text) - 1)
        return text[:i] + op[2] + text[i + 1 :]
    lines = text.splitlines()
    if not lines:
        return text
    if kind == "set_datatype":
        return (
            "\n".join(
                line.replace("datatype: float64", f"datatype: {op[2]}", 1)
                if f"name: {op[1]}," in line
                else line
                for line in lines
            )
            + "\n"
        )
    i = op[1] % len(lines)
    if kind == "delete_line":
        del lines[i]
    elif kind == "replace_line":
        lines[i] = op[2]
    elif kind == "replace_value":
        data_lines = [j for j, line in enumerate(lines) if not line.startswith("#")]
        if data_lines:
            j = data_lines[op[1] % len(data_lines)]
            parts = lines[j].split(" ")
            parts[op[1] % len(parts)] = op[2] or "''"
            lines[j] = " ".join(parts)
    return "\n".join(lines) + "\n"

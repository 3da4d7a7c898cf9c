"""Run selection: which observations of a data store a command uses.

A `RunSelection` combines three optional criteria, applied in this order to
the observation index:

* ``obs_ids``: keep only these runs (every one must be in the index);
* ``exclude_obs_ids``: drop these runs (ids not in the index are ignored);
* ``select``: a condition on observation-index columns, e.g.
  ``"ZEN_PNT < 40 and N_TELS >= 3"`` or ``"OBJECT == 'PKS 2155-304'"``.

The condition is parsed with `ast` and checked before anything is
evaluated: only comparisons (``< <= > >= == !=``, chained ones like
``20 <= ZEN_PNT < 40``, ``in`` / ``not in`` a list or tuple of
constants), ``and``, ``or``, ``not``, parentheses, numbers, strings and
column names are allowed. Anything else (calls, attributes, arithmetic,
subscripts, ...) is refused with a message naming the construct, and an
unknown name with a message listing the columns. Numbers compare with a
column's values in the column's own unit (deg for ZEN_PNT); strings compare
with whitespace-stripped text. A column name is matched exactly, else
ignoring case. A column whose name is not a Python name (``DATE-OBS``,
``TIME-OBS``) is written in backquotes, as in pandas' ``DataFrame.query``:
``"`DATE-OBS` >= '2005-01-01'"``.

`parse_obs_ids` reads the command-line form of a run list: ``"1,2,3"``
or ``"@file"`` (one id a line; blank lines and ``#`` comments ignored).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BgcubeError, ObservationError

__all__ = [
    "RunSelection",
    "SelectionError",
    "parse_obs_ids",
    "parse_condition",
    "evaluate_condition",
]


class SelectionError(BgcubeError, ValueError):
    """A run list or selection condition that cannot be used."""


_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def parse_obs_ids(text) -> list[int]:
    """Run ids from ``"1,2,3"`` or ``"@file"`` (one id a line, ``#`` comments).

    Parameters
    ----------
    text : str or sequence of int
        The command-line value, or already a sequence of ids.

    Returns
    -------
    obs_ids : list of int
        In the given order, duplicates removed.

    Raises
    ------
    SelectionError
        An entry that is not an integer (naming it and, for ``@file``, the
        file and line), a missing file, or no id at all.
    """
    if not isinstance(text, str):
        ids = [int(i) for i in text]
        return list(dict.fromkeys(ids))
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise SelectionError(f"run list file {str(path)!r} does not exist")
        entries = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            entries += [
                (f"file {str(path)!r} line {number}", v) for v in line.replace(",", " ").split()
            ]
    else:
        entries = [("", v.strip()) for v in text.split(",") if v.strip()]
    ids = []
    for where, value in entries:
        try:
            ids.append(int(value))
        except ValueError:
            place = f" ({where})" if where else ""
            raise SelectionError(f"run id {value!r}{place} is not an integer") from None
    if not ids:
        raise SelectionError(f"no run id in {text!r}")
    return list(dict.fromkeys(ids))


#: A quoted string (left as it is) or a backquoted column name.
_BACKQUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|`([^`]*)`""")


def _unquote_columns(text: str) -> tuple[str, dict]:
    """``text`` with each backquoted column name replaced by a Python name.

    Returns the text and the mapping from each stand-in name to the column name.
    """
    names = {}

    def replace(match):
        if match.group(1) is not None:  # a string constant: unchanged
            return match.group(1)
        column = match.group(2).strip()
        if not column:
            raise SelectionError(f"selection {text!r}: empty backquotes (give a column name)")
        stand_in = f"_bgcube_column_{len(names)}_"
        names[stand_in] = column
        return stand_in

    out = _BACKQUOTED.sub(replace, text)
    if "`" in _BACKQUOTED.sub("", text):  # what is left outside strings and pairs
        raise SelectionError(f"selection {text!r}: a backquote is not closed")
    return out, names


def _names_only(node) -> bool:
    """Whether ``node`` is names joined by arithmetic (``DATE - OBS``: a hyphenated name)."""
    if isinstance(node, ast.BinOp):
        return _names_only(node.left) and _names_only(node.right)
    return isinstance(node, ast.Name)


def _describe(node) -> str:
    try:
        return f"{type(node).__name__} {ast.unparse(node)!r}"
    except Exception:  # pragma: no cover - unparse handles every parsed node
        return type(node).__name__


def parse_condition(text, columns=None) -> ast.Expression:
    """Parse and check a selection condition (see the module docstring).

    Parameters
    ----------
    text : str
        E.g. ``"ZEN_PNT < 40 and N_TELS >= 3"``.
    columns : sequence of str, optional
        Column names allowed (matched exactly, else ignoring case); None
        accepts any name.

    Returns
    -------
    tree : ast.Expression

    Raises
    ------
    SelectionError
        Invalid syntax, a forbidden construct (named), or an unknown column
        (named, with the columns there are).
    """
    if not isinstance(text, str) or not text.strip():
        raise SelectionError(f"a selection condition must be a non-empty string, got {text!r}")
    source, quoted = _unquote_columns(text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise SelectionError(f"selection {text!r} is not a valid condition: {exc.msg}") from None
    for node in ast.walk(tree):  # backquoted names back to the columns they stand for
        if isinstance(node, ast.Name) and node.id in quoted:
            node.id = quoted[node.id]

    def check(node, top=False):
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                check(value, top=True)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            check(node.operand, top=True)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE and not isinstance(op, ast.In | ast.NotIn):
                    raise SelectionError(
                        f"selection {text!r}: comparison {type(op).__name__} is not allowed "
                        "(use < <= > >= == != in, not in)"
                    )
            if len(node.ops) > 1 and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                raise SelectionError(
                    f"selection {text!r}: 'in' cannot be chained with other comparisons "
                    "(join them with 'and')"
                )
            for operand, op in zip(node.comparators, node.ops, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    if not isinstance(operand, ast.List | ast.Tuple):
                        raise SelectionError(
                            f"selection {text!r}: 'in' needs a list of constants, got "
                            f"{_describe(operand)}"
                        )
                    for item in operand.elts:
                        check_value(item)
                else:
                    check_value(operand)
            check_value(node.left)
        elif top and isinstance(node, ast.Name | ast.Constant):
            raise SelectionError(
                f"selection {text!r}: {_describe(node)} is not a condition (compare it, "
                "e.g. ZEN_PNT < 40)"
            )
        else:
            raise SelectionError(
                f"selection {text!r}: {_describe(node)} is not allowed (only comparisons "
                "of columns with numbers or strings, and, or, not)"
            )

    def check_value(node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            node = node.operand
            if not (isinstance(node, ast.Constant) and _is_number(node.value)):
                raise SelectionError(f"selection {text!r}: a sign applies to numbers only")
            return
        if isinstance(node, ast.Constant):
            if not (_is_number(node.value) or isinstance(node.value, str)):
                raise SelectionError(
                    f"selection {text!r}: constant {node.value!r} is not a number or a string"
                )
        elif isinstance(node, ast.Name):
            if columns is not None:
                _column_name(node.id, columns, text)
        elif _names_only(node):  # e.g. DATE-OBS read as DATE - OBS
            name = ast.unparse(node).replace(" ", "")
            raise SelectionError(
                f"selection {text!r}: {_describe(node)} is not allowed (no arithmetic); a "
                f"column whose name holds '-' or '+' goes in backquotes: `{name}`"
            )
        else:
            raise SelectionError(
                f"selection {text!r}: {_describe(node)} is not allowed (only column names, "
                "numbers and strings can be compared)"
            )

    check(tree.body, top=True)
    return tree


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _column_name(name, columns, text):
    if name in columns:
        return name
    folded = {c.upper(): c for c in columns}
    if name.upper() in folded:
        return folded[name.upper()]
    raise SelectionError(
        f"selection {text!r}: no column {name!r} in the observation index "
        f"(columns: {', '.join(columns)})"
    )


def _column_values(table, name):
    column = table[name]
    values = np.ma.asarray(column)
    if values.dtype.kind == "S":
        values = np.ma.asarray(np.char.decode(np.asarray(values), "ascii", errors="replace"))
    if values.dtype.kind == "U":
        values = np.ma.asarray(np.char.strip(np.asarray(values)))
    if values.ndim != 1:
        raise SelectionError(f"observation-index column {name!r} is not one value per run")
    return values


def evaluate_condition(text, table) -> np.ndarray:
    """Boolean mask of the table rows where a selection condition holds.

    Parameters
    ----------
    text : str
        The condition (see the module docstring).
    table : `~astropy.table.Table`
        Observation index.

    Returns
    -------
    mask : numpy.ndarray of bool
        One value per row; a masked (missing) value fails its comparison.

    Raises
    ------
    SelectionError
        See `parse_condition`; also comparing a text column with a number or
        the reverse (naming the column).
    """
    columns = list(table.colnames)
    tree = parse_condition(text, columns)
    n = len(table)

    def value(node):
        if isinstance(node, ast.UnaryOp):
            number = node.operand.value
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.Constant):
            return node.value
        return _column_values(table, _column_name(node.id, columns, text))

    def compare(op, left, right, nodes):
        kinds = []
        for side in (left, right):
            if isinstance(side, np.ndarray):
                kinds.append("text" if side.dtype.kind == "U" else "number")
            else:
                kinds.append("text" if isinstance(side, str) else "number")
        if kinds[0] != kinds[1]:
            names = [ast.unparse(nd) for nd in nodes]
            raise SelectionError(
                f"selection {text!r}: cannot compare {names[0]} ({kinds[0]}) with "
                f"{names[1]} ({kinds[1]})"
            )
        result = op(left, right)
        return np.ma.filled(np.ma.asarray(result), False).astype(bool) & np.ones(n, dtype=bool)

    def evaluate(node):
        if isinstance(node, ast.BoolOp):
            masks = [evaluate(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = masks[0]
            for mask in masks[1:]:
                out = combine(out, mask)
            return out
        if isinstance(node, ast.UnaryOp):  # not
            return ~evaluate(node.operand)
        out = np.ones(n, dtype=bool)
        left_node = node.left
        left = value(left_node)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                hits = np.zeros(n, dtype=bool)
                for item in right_node.elts:
                    hits |= compare(operator.eq, left, value(item), (left_node, item))
                out &= ~hits if isinstance(op, ast.NotIn) else hits
            else:
                right = value(right_node)
                out &= compare(_COMPARE[type(op)], left, right, (left_node, right_node))
            left_node = right_node
            if not isinstance(right_node, ast.List | ast.Tuple):
                left = value(right_node)
        return out

    return evaluate(tree.body)


@dataclass(frozen=True)
class RunSelection:
    """Which runs of a data store to use.

    Parameters
    ----------
    obs_ids : sequence of int, optional
        Keep only these runs (each must be in the observation index).
    exclude_obs_ids : sequence of int, optional
        Drop these runs.
    select : str, optional
        Condition on observation-index columns (see the module docstring).

    Examples
    --------
    >>> sel = RunSelection(select="ZEN_PNT < 40 and N_TELS >= 3", exclude_obs_ids=[23523])
    >>> store = sel.apply(DataStore.from_dir("hess-dl3-dr1"))   # doctest: +SKIP
    """

    obs_ids: tuple | None = None
    exclude_obs_ids: tuple | None = None
    select: str | None = None

    def __post_init__(self):
        for name in ("obs_ids", "exclude_obs_ids"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(parse_obs_ids(value)))
        if self.select is not None:
            parse_condition(self.select)  # syntax and constructs, before any data are read

    @property
    def is_all(self) -> bool:
        """True when no criterion is given."""
        return self.obs_ids is None and self.exclude_obs_ids is None and self.select is None

    def mask(self, obs_table) -> np.ndarray:
        """Boolean mask of the selected rows of an observation index.

        Raises
        ------
        ObservationError
            An asked run is not in the index, or no run is left (saying
            which criterion removed the last ones).
        SelectionError
            A bad condition (see `evaluate_condition`).
        """
        ids = np.asarray(obs_table["OBS_ID"], dtype=np.int64)
        mask = np.ones(ids.size, dtype=bool)
        steps = []
        if self.obs_ids is not None:
            missing = sorted(set(self.obs_ids) - set(ids.tolist()))
            if missing:
                raise ObservationError(
                    f"OBS_ID(s) {missing} asked for are not in the observation index"
                )
            mask &= np.isin(ids, np.asarray(self.obs_ids, dtype=np.int64))
            steps.append((f"{len(self.obs_ids)} listed run id(s)", int(mask.sum())))
        if self.exclude_obs_ids is not None:
            mask &= ~np.isin(ids, np.asarray(self.exclude_obs_ids, dtype=np.int64))
            steps.append((f"excluding {len(self.exclude_obs_ids)} run id(s)", int(mask.sum())))
        if self.select is not None:
            mask &= evaluate_condition(self.select, obs_table)
            steps.append((f"selection {self.select!r}", int(mask.sum())))
        if not mask.any():
            trail = ", then ".join(f"{what} -> {n} run(s)" for what, n in steps) or "no criterion"
            raise ObservationError(
                f"no run selected: of {ids.size} run(s) in the observation index, {trail}"
            )
        return mask

    def apply(self, store):
        """The data store restricted to the selected runs (the HDU index is shared)."""
        if self.is_all:
            if len(store) == 0:
                raise ObservationError("no run selected: the observation index is empty")
            return store
        mask = self.mask(store.obs_table)
        return store.select(obs_ids=store.obs_ids[mask].tolist())

    def provenance(self) -> dict:
        """FITS-header keywords describing the selection (written with the outputs).

        ``SELIDS``: the listed ids (comma-separated, or 'ALL'); ``SELEXCL``:
        the excluded ids ('' for none); ``SELEXPR``: the condition ('' for none).
        """
        return {
            "SELIDS": "ALL" if self.obs_ids is None else ",".join(str(i) for i in self.obs_ids),
            "SELEXCL": ""
            if self.exclude_obs_ids is None
            else ",".join(str(i) for i in self.exclude_obs_ids),
            "SELEXPR": self.select or "",
        }

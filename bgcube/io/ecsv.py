"""ECSV files of plain tables, the bytes of astropy's writer without its YAML module.

``Table.write(format='ascii.ecsv')`` dumps the header with astropy's YAML
dumper (``astropy.io.misc.yaml``), whose import loads astropy.coordinates
(frames, time scales: about 0.1 s, more than the rest of a short build needs).
bgcube writes small ECSV files in every build (observation groups, exclusion
regions), so it writes the tables it can here: columns of numbers, booleans
or strings (one value per row, no mask, format, description or meta) and
table meta of plain Python values. The header is dumped by PyYAML with the
representers astropy's dumper uses for those values, the column names and
rows by astropy's own splitters, so the file is byte for byte what
``Table.write`` gives (tested on many tables); any other table goes to
``Table.write``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import PathLike

__all__ = ["write_ecsv", "ecsv_lines"]

#: Plain meta values the lean dumper represents as astropy's does (tuples,
#: NumPy scalars, Quantities... go to astropy).
_PLAIN = (str, int, float, bool, type(None))


def write_ecsv(table: Table, filename: PathLike) -> None:
    """Write ``table`` as ECSV, as ``table.write(filename, format='ascii.ecsv')`` would.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The table.
    filename : str or path-like
        Output file (overwritten).
    """
    lines = ecsv_lines(table)
    if lines is None:
        table.write(filename, format="ascii.ecsv", overwrite=True)
        return
    text = os.linesep.join(lines) + os.linesep
    with open(filename, "w", newline="") as f:
        f.write(text)


def ecsv_lines(table: Table) -> list[str] | None:
    """The lines of ``table``'s ECSV file, or None where astropy's writer is needed.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The table.

    Returns
    -------
    lines : list of str or None
        Without line ends; None for a table the lean writer does not handle.
    """
    from astropy.io.ascii.core import DefaultSplitter
    from astropy.io.ascii.ecsv import ECSV_VERSION, ECSVHeaderSplitter
    from astropy.table import Column, Table
    from astropy.table.meta import ColumnDict, _get_datatype_from_dtype

    if type(table) is not Table or not table.colnames or not _plain(table.meta):
        return None
    attrs = []
    for col in table.itercols():
        info = col.info
        name = info.name
        if (
            type(col) is not Column
            or col.ndim != 1
            or col.dtype.kind not in "biufU"
            or info.format is not None
            or info.description is not None
            or info.meta
            or not isinstance(name, str)
            or name != name.strip()
            or name.lstrip().startswith("#")
        ):
            return None
        attr = ColumnDict()
        attr["name"] = name
        attr["datatype"] = _get_datatype_from_dtype(info.dtype)
        if info.unit is not None:
            attr["unit"] = str(info.unit)
        attrs.append(attr)
    header = {"schema": "astropy-2.0", "datatype": attrs}
    if table.meta:
        header["meta"] = OrderedDict(table.meta)
    yaml_lines = _dump(header)
    lines = [f"# {line}" for line in [f"%ECSV {ECSV_VERSION}", "---", *yaml_lines]]
    lines.append(ECSVHeaderSplitter().join(list(table.colnames)))
    splitter = DefaultSplitter()
    columns = [[str(v) for v in col] for col in table.itercols()]
    lines.extend(splitter.join(list(row)) for row in zip(*columns, strict=True))
    return lines


def _plain(value) -> bool:
    """Whether the lean dumper writes ``value`` as astropy's does."""
    if type(value) in (dict, OrderedDict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(v) for v in value)
    return type(value) in _PLAIN


def _dump(header) -> list[str]:
    """``astropy.table.meta.get_yaml_from_header``'s lines for plain values."""
    import yaml
    from astropy.table.meta import ColumnDict, _repr_column_dict, _repr_odict

    class TableDumper(yaml.SafeDumper):  # AstropyDumper, as far as plain values go
        # astropy.table.meta's TableDumper: keys in the mapping's order
        def represent_mapping(self, tag, mapping, flow_style=None):
            value = []
            node = yaml.MappingNode(tag, value, flow_style=flow_style)
            if self.alias_key is not None:
                self.represented_objects[self.alias_key] = node
            best_style = True
            if hasattr(mapping, "items"):
                mapping = mapping.items()
                if hasattr(mapping, "sort"):
                    mapping.sort()
                else:
                    mapping = list(mapping)
                    try:
                        mapping = sorted(mapping)
                    except TypeError:
                        pass
            for item_key, item_value in mapping:
                node_key = self.represent_data(item_key)
                node_value = self.represent_data(item_value)
                if not (isinstance(node_key, yaml.ScalarNode) and not node_key.style):
                    best_style = False
                if not (isinstance(node_value, yaml.ScalarNode) and not node_value.style):
                    best_style = False
                value.append((node_key, node_value))
            if flow_style is None:
                if self.default_flow_style is not None:
                    node.flow_style = self.default_flow_style
                else:
                    node.flow_style = best_style
            return node

    TableDumper.add_representer(OrderedDict, _repr_odict)
    TableDumper.add_representer(ColumnDict, _repr_column_dict)
    return yaml.dump(header, default_flow_style=None, Dumper=TableDumper, width=130).splitlines()

"""Reading and writing observation group definitions (ECSV), as a base of `ObservationGroups`.

The groups are written as a table of `GROUP_COLUMNS` (angles in deg) and read
back from any table with those columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import astropy.units as u
import numpy as np

from ..errors import BinningError, FileFormatError, file_format_errors

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import PathLike

__all__ = ["GROUP_COLUMNS", "GroupsIO"]

#: Columns of a group definition table.
GROUP_COLUMNS = ("GROUP_ID", "ZEN_MIN", "ZEN_MAX", "AZ_MIN", "AZ_MAX")


class GroupsIO:
    """``write``, ``read`` and ``from_table`` of `bgcube.make.grouping.ObservationGroups` (a mixin)."""

    table: Table

    def write(self, filename: PathLike, overwrite: bool = False) -> None:
        """Write the group definitions as ECSV, atomically.

        Raises
        ------
        OutputExistsError
            If the file exists and ``overwrite`` is False.
        """
        from ..io.atomic import atomic_output
        from ..io.ecsv import write_ecsv

        with atomic_output(filename, overwrite=overwrite) as tmp:
            write_ecsv(self.table, tmp)

    @classmethod
    def read(cls, filename: PathLike) -> Self:
        """Read group definitions written by `write` (or any table with `GROUP_COLUMNS`).

        Raises
        ------
        FileFormatError
            If the file cannot be read or lacks a column.
        """
        from astropy.table import Table

        with file_format_errors(filename, what="observation groups"):
            try:
                table = Table.read(filename, format="ascii.ecsv")
            except FileNotFoundError:
                raise FileFormatError(
                    "observation groups file does not exist", filename=filename
                ) from None
            try:
                return cls.from_table(table, filename=filename)
            except BinningError as exc:
                raise FileFormatError(
                    f"invalid observation groups: {exc}", filename=filename
                ) from exc

    @classmethod
    def from_table(cls, table: Table, filename: PathLike | None = None) -> Self:
        """Groups from a table with `GROUP_COLUMNS` (angles in deg unless given units)."""
        missing = [c for c in GROUP_COLUMNS if c not in table.colnames]
        if missing:
            raise FileFormatError(
                f"observation groups table lacks column(s) {missing} (columns: {table.colnames})",
                filename=filename,
            )

        def angle(name):
            col = table[name]
            values = np.asarray(col)
            if values.dtype.kind not in "iuf":
                raise FileFormatError(
                    f"observation groups column {name} must hold numbers, got dtype {values.dtype}",
                    filename=filename,
                )
            return u.Quantity(values, col.unit or u.deg, dtype=np.float64).to_value(u.deg)

        ids = np.asarray(table["GROUP_ID"])
        integral = ids.dtype.kind in "iu" or (
            ids.dtype.kind == "f" and bool(np.all(np.isfinite(ids) & (ids == np.round(ids))))
        )
        if not integral:
            raise FileFormatError(
                f"observation groups column GROUP_ID must hold integers, got {ids.tolist()}",
                filename=filename,
            )
        return cls(
            angle("ZEN_MIN"),
            angle("ZEN_MAX"),
            angle("AZ_MIN"),
            angle("AZ_MAX"),
            group_ids=ids.astype(np.int64),
        )

"""A GADF data store: the obs-index and hdu-index tables of a DL3 data set.

The HDU index lists, per observation and HDU type, where the HDU is:
``FILE_DIR`` / ``FILE_NAME`` (relative to the index file's folder, or to its
``BASE_DIR`` header keyword when given) and ``HDU_NAME``. The observation
index has one row per observation (OBS_ID, pointing, times, N_TELS, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    BgcubeError,
    DataNotFoundError,
    FileFormatError,
    ObservationError,
    file_format_errors,
)
from ..io.fits import read_fits_table
from .obs_table import select_observations, zenith_of
from .observation import Observation

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import ModelLike, PathLike

__all__ = ["DataStore", "select_observations", "zenith_of", "HDU_INDEX", "OBS_INDEX"]

#: Default file names of the indices in a data store folder.
HDU_INDEX = "hdu-index.fits.gz"
OBS_INDEX = "obs-index.fits.gz"

_HDU_INDEX_COLUMNS = ("OBS_ID", "HDU_TYPE", "FILE_DIR", "FILE_NAME", "HDU_NAME")


def _read_table(filename, what):
    path = Path(filename)
    if not path.is_file():
        raise DataNotFoundError(f"{what} file {str(path)!r} does not exist")
    return read_fits_table(path, 1, what)


def _check_obs_ids(table, what, filename):
    """The OBS_ID column must hold one finite integer per row."""
    column = table["OBS_ID"]
    values = np.asarray(column)
    ok = not np.ma.is_masked(column) and values.ndim == 1 and values.dtype.kind in "iuf"
    if ok and values.dtype.kind == "f":
        ok = bool(np.all(np.isfinite(values) & (values == np.round(values))))
    if not ok:
        raise FileFormatError(
            f"{what} column OBS_ID must hold one integer per row, got dtype {values.dtype} "
            f"and shape {values.shape}",
            filename=filename,
        )


class DataStore:
    """Observations of a GADF DL3 data set, found through its index tables.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        Observation index, one row per observation.
    hdu_table : `~astropy.table.Table`
        HDU index (OBS_ID, HDU_TYPE, FILE_DIR, FILE_NAME, HDU_NAME).
    base_dir : str or path
        Folder the HDU index's FILE_DIR are relative to.
    hdu_index_file : str, optional
        The HDU index file (for messages).
    obs_index_file : str, optional
        The observation index file (for messages).

    Examples
    --------
    >>> store = DataStore.from_dir("hess-dl3-dr1")              # doctest: +SKIP
    >>> crab = store.select(where={"OBJECT": "Crab Nebula"})     # doctest: +SKIP
    >>> obs = crab.observation(crab.obs_ids[0])                  # doctest: +SKIP
    """

    def __init__(
        self,
        obs_table: Table,
        hdu_table: Table,
        base_dir: PathLike,
        hdu_index_file: PathLike | None = None,
        obs_index_file: PathLike | None = None,
    ) -> None:
        missing = [c for c in _HDU_INDEX_COLUMNS if c not in hdu_table.colnames]
        if missing:
            raise FileFormatError(
                f"HDU index lacks column(s) {missing} (columns: {hdu_table.colnames})",
                filename=hdu_index_file,
            )
        if "OBS_ID" not in obs_table.colnames:
            raise FileFormatError(
                f"observation index has no OBS_ID column (columns: {obs_table.colnames})",
                filename=obs_index_file,
            )
        _check_obs_ids(obs_table, "observation index", obs_index_file)
        _check_obs_ids(hdu_table, "HDU index", hdu_index_file)
        self.obs_table = obs_table
        self.hdu_table = hdu_table
        self.base_dir = Path(base_dir)
        self.hdu_index_file = None if hdu_index_file is None else str(hdu_index_file)
        self.obs_index_file = None if obs_index_file is None else str(obs_index_file)
        self._locations = {}
        with file_format_errors(hdu_index_file, what="HDU index"):
            for row in hdu_table:
                key = (int(row["OBS_ID"]), str(row["HDU_TYPE"]).strip().lower())
                self._locations.setdefault(
                    key,
                    (
                        str(row["FILE_DIR"]).strip(),
                        str(row["FILE_NAME"]).strip(),
                        str(row["HDU_NAME"]).strip(),
                    ),
                )

    @classmethod
    def from_dir(
        cls, base_dir: PathLike, hdu_index: str = HDU_INDEX, obs_index: str = OBS_INDEX
    ) -> DataStore:
        """Open the data store in a folder holding its index files.

        Parameters
        ----------
        base_dir : str or path
            The folder.
        hdu_index, obs_index : str
            Index file names inside it.

        Raises
        ------
        DataNotFoundError
            If the folder or an index file does not exist, or the folder is a file.
        FileFormatError
            If an index cannot be read or lacks required columns.
        """
        base = Path(base_dir)
        if base.is_file():
            raise DataNotFoundError(
                f"data store folder {str(base)!r} is a file: give the folder holding "
                f"{hdu_index} and {obs_index}"
            )
        if not base.is_dir():
            raise DataNotFoundError(f"data store folder {str(base)!r} does not exist")
        return cls.from_files(base / hdu_index, base / obs_index)

    @classmethod
    def from_files(cls, hdu_index_file: PathLike, obs_index_file: PathLike) -> DataStore:
        """Open a data store from its two index files (see `from_dir`)."""
        hdu_table = _read_table(hdu_index_file, "HDU index")
        obs_table = _read_table(obs_index_file, "observation index")
        base = Path(hdu_index_file).parent / str(hdu_table.meta.get("BASE_DIR", "") or "")
        return cls(
            obs_table, hdu_table, base, hdu_index_file=hdu_index_file, obs_index_file=obs_index_file
        )

    def __len__(self):
        return len(self.obs_table)

    def __repr__(self):
        return f"DataStore(n_obs={len(self)}, base_dir={str(self.base_dir)!r})"

    @property
    def obs_ids(self) -> np.ndarray:
        """OBS_ID of every observation in the (selected) observation table."""
        return np.asarray(self.obs_table["OBS_ID"], dtype=np.int64)

    def select(
        self,
        obs_ids: Sequence[int] | None = None,
        *,
        zenith: tuple | None = None,
        azimuth: tuple | None = None,
        n_tels_min: int | None = None,
        where: dict | None = None,
    ) -> DataStore:
        """A data store with the observations passing the criteria.

        Same arguments as `select_observations`; the HDU index is shared.
        """
        table = select_observations(
            self.obs_table,
            obs_ids,
            zenith=zenith,
            azimuth=azimuth,
            n_tels_min=n_tels_min,
            where=where,
        )
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, obs_table=table)
        return new

    def has_hdu(self, obs_id: int, hdu_type: str = "events") -> bool:
        """Whether the HDU index has a row of this HDU_TYPE for the observation.

        Parameters
        ----------
        obs_id : int
        hdu_type : str
            HDU_TYPE of the HDU index (``'events'``, ``'aeff'``, ...).

        Returns
        -------
        listed : bool
            True even where the file it names is missing (`hdu_location` says so).
        """
        return (int(obs_id), hdu_type.lower()) in self._locations

    def hdu_location(self, obs_id: int, hdu_type: str = "events") -> tuple[Path, str]:
        """Where an observation's HDU is.

        Parameters
        ----------
        obs_id : int
        hdu_type : str
            HDU_TYPE of the HDU index (``'events'``, ``'gti'``, ``'bkg'``, ...).

        Returns
        -------
        filename : `~pathlib.Path`
        hdu_name : str

        Raises
        ------
        ObservationError
            If the HDU index has no such row, or the file does not exist.
        """
        key = (int(obs_id), hdu_type.lower())
        if key not in self._locations:
            raise ObservationError(
                f"OBS_ID {int(obs_id)}: no HDU_TYPE {hdu_type!r} row in the HDU index "
                f"{self.hdu_index_file!r}"
            )
        file_dir, file_name, hdu_name = self._locations[key]
        path = self.base_dir / file_dir / file_name
        if not path.is_file():
            raise ObservationError(
                f"OBS_ID {int(obs_id)}: {hdu_type} file {str(path)!r} listed in the HDU index "
                "does not exist"
            )
        return path, hdu_name

    def _index_row(self, obs_id):
        rows = np.nonzero(self.obs_ids == int(obs_id))[0]
        if rows.size == 0:
            return {}
        row = self.obs_table[rows[0]]
        return {name: row[name] for name in self.obs_table.colnames}

    def observation(self, obs_id: int, **read_kwargs: Any) -> Observation:
        """Read one observation (events, GTI, pointing, times).

        Parameters
        ----------
        obs_id : int
        **read_kwargs
            Passed to `Observation.read` (``fov_alignment``, ``columns``, ...).

        Returns
        -------
        observation : `~bgcube.data.observation.Observation`

        Raises
        ------
        ObservationError
            Naming the OBS_ID and the file, for any reason the run cannot be
            read (missing index row or file, missing EVENTS HDU or column,
            no pointing, ONTIME <= 0, ...).
        """
        events_file, events_hdu = self.hdu_location(obs_id, "events")
        try:
            gti_file, gti_hdu = self.hdu_location(obs_id, "gti")
        except ObservationError:
            gti_file, gti_hdu = None, "GTI"  # no GTI row: look in the event file
        kwargs = dict(
            obs_id=obs_id,
            hdu=events_hdu,
            gti_hdu=gti_hdu,
            gti_filename=None if gti_file == events_file else gti_file,
            fallback_meta=self._index_row(obs_id),
        )
        kwargs.update(read_kwargs)
        try:
            return Observation.read(events_file, **kwargs)
        except ObservationError:
            raise
        except BgcubeError as exc:
            raise ObservationError(f"OBS_ID {int(obs_id)}: {exc}") from exc

    def observations(
        self,
        obs_ids: Sequence[int] | None = None,
        *,
        on_error: Callable[[int, Exception], None] | None = None,
        **read_kwargs: Any,
    ) -> Iterator[Observation]:
        """Iterate over observations (default: all of the observation table).

        Parameters
        ----------
        obs_ids : sequence of int, optional
        on_error : callable, optional
            ``on_error(obs_id, exception)`` is called for a run that cannot be
            read, and the run skipped; by default the error is raised.
        **read_kwargs
            Passed to `Observation.read`.

        Yields
        ------
        observation : `~bgcube.data.observation.Observation`
        """
        for obs_id in self.obs_ids if obs_ids is None else obs_ids:
            try:
                obs = self.observation(obs_id, **read_kwargs)
            except ObservationError as exc:
                if on_error is None:
                    raise
                on_error(int(obs_id), exc)
                continue
            yield obs

    def fill_model(
        self,
        model: ModelLike,
        obs_ids: Sequence[int],
        exclusion: Any = None,
        *,
        alignment: str = "RADEC",
        fail_fast: bool = True,
        progress: bool | None = None,
    ) -> tuple[list, list[tuple[int, str]]]:
        """Add the events and time of observations of this store to a background model.

        What `bgcube.FOVCubeBackgroundModel.fill_obs` calls: the container
        knows no data store, the store fills the container (see
        `bgcube.data.fill.fill_observations`).

        Parameters
        ----------
        model : `~bgcube.FOVCubeBackgroundModel`
            The model to fill.
        obs_ids : sequence of int
            The observations.
        exclusion : `~bgcube.data.exclusion.ExclusionRegions`, optional
            Events inside are dropped and each pixel's time reduced by its
            excluded fraction, per observation.
        alignment : {'RADEC', 'ALTAZ'}
            Field-of-view alignment of the model.
        fail_fast : bool
            Raise on an unreadable run (default); otherwise leave it out.
        progress : bool, optional
            Progress bar (default: when stderr is a terminal).

        Returns
        -------
        filled : list of `~bgcube.data.fill.ObservationFill`
        failed : list of (int, str)
            OBS_ID and reason of each observation left out.
        """
        from .fill import fill_observations

        return fill_observations(
            model,
            obs_ids,
            self,
            exclusion,
            alignment=alignment,
            fail_fast=fail_fast,
            progress=progress,
        )

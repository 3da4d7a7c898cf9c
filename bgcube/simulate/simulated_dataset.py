"""A simulated data set on disk and the truth it was drawn from (`SimulatedDataset`).

`bgcube.simulate.dataset.make_test_dataset` writes the files named here and
returns a `SimulatedDataset`; `SimulatedDataset.read` gets it back from the
folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..errors import DataNotFoundError, FileFormatError
from .sources import GaussianSource, sources_table
from .truth import expected_counts, true_model

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import BackendLike, PathLike
    from ..cube import FOVCube
    from ..data.store import DataStore
    from ..model import FOVCubeBackgroundModel

__all__ = [
    "SimulatedDataset",
    "OBS_INDEX",
    "HDU_INDEX",
    "TRUE_MODEL",
    "TRUTH",
    "SOURCES",
    "DATA_DIR",
]

#: Names of the files of a simulated data set.
OBS_INDEX = "obs-index.fits.gz"
HDU_INDEX = "hdu-index.fits.gz"
TRUE_MODEL = "true_model.fits.gz"
TRUTH = "truth.fits.gz"
SOURCES = "sources.ecsv"
DATA_DIR = "data"


@dataclass
class SimulatedDataset:
    """A simulated data set on disk and the truth it was drawn from.

    Attributes
    ----------
    path : pathlib.Path
        The data set folder (holds the index files).
    obs_table : `~astropy.table.Table`
        The observation index (one row per run).
    background : `~bgcube.FOVCube`
        True rate at norm 1, per unit ONTIME, 1/(MeV s sr), RADEC field of view.
    norms : numpy.ndarray
        Background norm of each run (``zenith_dependence(ALT_PNT)``, times the
        efficiency dependence when one was asked for).
    sources : list of `~bgcube.simulate.GaussianSource`
        The simulated sources.
    n_background, n_source : numpy.ndarray
        Number of background and source events written per run.
    filenames : list of pathlib.Path
        The event files.
    """

    path: Path
    obs_table: object
    background: object
    norms: np.ndarray
    sources: list = field(default_factory=list)
    n_background: np.ndarray = None
    n_source: np.ndarray = None
    filenames: list = field(default_factory=list)

    def __repr__(self):
        return (
            f"SimulatedDataset(path='{self.path}', n_obs={len(self.obs_table)}, "
            f"n_events={int(np.sum(self.n_background) + np.sum(self.n_source))}, "
            f"n_sources={len(self.sources)})"
        )

    @property
    def obs_ids(self) -> np.ndarray:
        """OBS_ID of every run (numpy array)."""
        return np.asarray(self.obs_table["OBS_ID"])

    def _rows(self, obs_ids):
        if obs_ids is None:
            return np.arange(len(self.obs_table))
        wanted = np.atleast_1d(np.asarray(obs_ids, dtype=np.int64))
        missing = sorted(set(wanted.tolist()) - set(self.obs_ids.tolist()))
        if missing:
            raise ValueError(f"OBS_IDs not in this data set: {missing}")
        return np.searchsorted(self.obs_ids, wanted)

    def run_background(self, obs_id: int) -> FOVCube:
        """True background rate of one run (per ONTIME), a `~bgcube.FOVCube`."""
        row = self._rows([obs_id])[0]
        cube = self.background.copy(data=self.background.data * float(self.norms[row]))
        cube.meta["OBS_ID"] = int(obs_id)
        return cube

    def expected_counts(self, obs_ids: Sequence[int] | None = None) -> np.ndarray:
        """Expected background counts per bin of the truth's binning (NumPy array).

        Parameters
        ----------
        obs_ids : array_like of int, optional
            Runs to add up (default: all).
        """
        rows = self._rows(obs_ids)
        ontime = u.Quantity(self.obs_table["ONTIME"], u.s).to_value(u.s)[rows]
        return expected_counts(self.background, self.norms[rows] * ontime)

    def true_model(
        self,
        obs_ids: Sequence[int] | None = None,
        time_convention: str = "ONTIME",
        backend: BackendLike = None,
    ) -> FOVCubeBackgroundModel:
        """The true background model of a set of runs, to compare a reconstruction with.

        Parameters
        ----------
        obs_ids : array_like of int, optional
            Runs the model is made of (default: all).
        time_convention : {'ONTIME', 'LIVETIME'}
            Use the convention of the reconstructed model.
        backend : str or module, optional
            Array backend of the cubes.

        Returns
        -------
        model : `~bgcube.FOVCubeBackgroundModel`
            Expected counts, summed time and true rate on the truth's binning.
        """
        rows = self._rows(obs_ids)
        table = self.obs_table
        return true_model(
            self.background,
            self.norms[rows],
            u.Quantity(table["ONTIME"], u.s)[rows],
            u.Quantity(table["LIVETIME"], u.s)[rows],
            time_convention=time_convention,
            backend=backend,
        )

    @classmethod
    def read(cls, path: PathLike) -> SimulatedDataset:
        """Read a data set written by `make_test_dataset`, truth included.

        Parameters
        ----------
        path : str or path
            The data set folder.

        Returns
        -------
        dataset : SimulatedDataset

        Raises
        ------
        bgcube.errors.DataNotFoundError
            If the folder lacks the index or truth files.
        bgcube.errors.FileFormatError
            If the truth file does not list every run of the index.
        """
        from astropy.table import Table

        from ..cube import FOVCube
        from ..data.store import DataStore

        path = Path(path).expanduser()
        missing = [n for n in (OBS_INDEX, HDU_INDEX, TRUTH) if not (path / n).is_file()]
        if missing:
            raise DataNotFoundError(
                f"{str(path)!r} is not a simulated data set: missing {', '.join(missing)}"
            )
        store = DataStore.from_dir(path)
        obs_table = Table.read(path / OBS_INDEX, hdu=1)
        runs = Table.read(path / TRUTH, hdu="RUNS")
        order = {int(i): k for k, i in enumerate(runs["OBS_ID"])}
        absent = [int(i) for i in obs_table["OBS_ID"] if int(i) not in order]
        if absent:
            raise FileFormatError(
                f"no truth for OBS_IDs {absent}", filename=path / TRUTH, hdu="RUNS"
            )
        rows = [order[int(i)] for i in obs_table["OBS_ID"]]
        sources = []
        if (path / SOURCES).is_file():
            table = Table.read(path / SOURCES, format="ascii.ecsv")
            sources = [
                GaussianSource(
                    str(r["NAME"]),
                    float(r["RA"]),
                    float(r["DEC"]),
                    float(r["SIGMA"]),
                    float(r["RATE"]),
                    float(r["SPECTRAL_INDEX"]),
                )
                for r in table
            ]
        filenames = []
        for obs_id in obs_table["OBS_ID"]:
            filename, _ = store.hdu_location(int(obs_id), "events")
            filenames.append(Path(filename))
        return cls(
            path,
            obs_table,
            FOVCube.read(path / TRUTH, hdu="BKG"),
            np.asarray(runs["NORM"], dtype=float)[rows],
            sources,
            np.asarray(runs["N_BKG"], dtype=np.int64)[rows],
            np.asarray(runs["N_SRC"], dtype=np.int64)[rows],
            filenames,
        )

    def data_store(self) -> DataStore:
        """The data set as a `bgcube.data.store.DataStore`."""
        from ..data.store import DataStore

        return DataStore.from_dir(self.path)

    def sources_table(self) -> Table:
        """The sources as a Table (see `bgcube.simulate.sources_table`)."""
        return sources_table(self.sources)

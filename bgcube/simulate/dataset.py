"""Simulated GADF DL3 data sets drawn from a known background, for true-versus-reconstructed tests.

`make_test_dataset` writes, in ``outdir``::

    obs-index.fits.gz, hdu-index.fits.gz     the H.E.S.S. DL3 DR1 index layout
    data/sim_obs_id_NNNNNN.fits              EVENTS, GTI and BKG (the run's true rate)
    true_model.fits.gz                       the true model of all runs (ONTIME)
    truth.fits.gz                            BKG: the true rate at norm 1; RUNS: OBS_ID,
                                             NORM, N_BKG, N_SRC of every run
    sources.ecsv                             the simulated sources, if any (readable as
                                             `bgcube.data.exclusion.ExclusionRegions`)

and returns a `SimulatedDataset` that gives the true model of any subset of
the runs (`SimulatedDataset.true_model`); `SimulatedDataset.read` gets it
back from the folder.

Background events are drawn exactly from a rate cube constant within its
bins (`bgcube.simulate.sampling`): for run i the expected counts per bin are
``rate * zenith_dependence(ALT_PNT_i) * ONTIME_i * dE * dOmega``, in the RADEC
field of view (FOVALIGN='RADEC'); RA/DEC follow from DETX/DETY with
`bgcube.data.fov.fov_to_sky`, Gammapy's convention. Gamma-ray events of
Gaussian sources are added in the sky and kept where they fall inside the
cube's field of view and energy range. Event times are uniform in the run's
single GTI. Everything is drawn from one NumPy generator, so a seed gives the
same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits

from ..data.fov import fov_to_sky, sky_to_fov
from ..errors import OutputExistsError
from ..io import atomic_output
from . import files
from .observations import make_test_observation_table
from .sampling import sample_binned_events, uniform_in_bins
from .simulated_dataset import (
    DATA_DIR,
    HDU_INDEX,
    OBS_INDEX,
    SOURCES,
    TRUE_MODEL,
    TRUTH,
    SimulatedDataset,
)
from .sources import sample_source_events
from .testmodel import altitude_norm, make_test_bg_cube_model
from .truth import as_rate_cube, expected_counts

if TYPE_CHECKING:
    from .._types import BackendLike, PathLike, QuantityLike
    from ..cube import FOVCube

__all__ = ["make_test_background", "make_test_dataset", "SimulatedDataset"]

# Defaults (never modified in place): the binning of the original define_cube_binning.
_FOV_RANGE = Angle([-0.07, 0.07], "rad")
_ENERGY_BAND = u.Quantity([0.1, 100.0], "TeV")
_SIGMA = Angle(5.0, "deg")
_AZ_RANGE = Angle([0.0, 360.0], "deg")
_ALT_RANGE = Angle([45.0, 90.0], "deg")
_DATES = ("2010-01-01", "2015-01-01")


def make_test_background(
    sigma: QuantityLike = _SIGMA,
    spectral_index: float = 2.7,
    total_rate: QuantityLike = 60.0 * u.Hz,
    *,
    fov_range: QuantityLike = _FOV_RANGE,
    n_fov_bins: int = 60,
    energy_band: QuantityLike = _ENERGY_BAND,
    n_energy_bins: int = 20,
    backend: BackendLike = None,
) -> FOVCube:
    """The default true background: the test-model family at zenith, scaled to a total rate.

    Parameters
    ----------
    sigma : `~astropy.coordinates.Angle`
        Gaussian width at the highest energy (see `make_test_bg_cube_model`).
    spectral_index : float
        Power-law index of the counts per bin.
    total_rate : `~astropy.units.Quantity`
        Rate of background events at zenith over the whole cube, Hz.
    fov_range : `~astropy.coordinates.Angle`
        ``(min, max)`` of DETX and DETY (default +-0.07 rad, as the original).
    n_fov_bins : int
        Bins per field-of-view axis.
    energy_band : `~astropy.units.Quantity`
        ``(min, max)`` energy.
    n_energy_bins : int
        Logarithmic energy bins.
    backend : str or module, optional
        Array backend of the cube.

    Returns
    -------
    rate : `~bgcube.FOVCube`
        Rate per unit ONTIME in 1/(MeV s sr), ``meta`` FOVALIGN='RADEC',
        BKG_TIME='ONTIME'.
    """
    model = make_test_bg_cube_model(
        fov_range,
        n_fov_bins,
        fov_range,
        n_fov_bins,
        energy_band,
        n_energy_bins,
        altitude=Angle(90.0, "deg"),
        sigma=sigma,
        spectral_index=spectral_index,
        backend=backend,
    )
    cube = model.background_cube
    integral = cube.integral.to_value(u.Hz)
    cube.data = cube.data * (u.Quantity(total_rate, u.Hz).value / integral)
    cube.meta.update({"FOVALIGN": "RADEC", "BKG_TIME": "ONTIME"})
    return cube


def _runs_table(dataset):
    """The RUNS table of the truth file: OBS_ID, NORM, N_BKG, N_SRC."""
    from astropy.table import Table

    table = Table(
        {
            "OBS_ID": dataset.obs_ids.astype(np.int64),
            "NORM": np.asarray(dataset.norms, dtype=float),
            "N_BKG": np.asarray(dataset.n_background, dtype=np.int64),
            "N_SRC": np.asarray(dataset.n_source, dtype=np.int64),
        }
    )
    table.meta["EXTNAME"] = "RUNS"
    table.meta["COMMENT"] = "true background of run i = NORM_i x BKG (per ONTIME)"
    return table


def _check_outdir(outdir, overwrite):
    path = Path(outdir).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"outdir {str(path)!r} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"folder {str(path)!r} is not empty; pass overwrite=True to write the data set into it"
        )
    (path / DATA_DIR).mkdir(parents=True, exist_ok=True)
    return path


def _source_events(sources, row, box, energy_range, rng):
    """Source events of one run inside the field-of-view box; (energy, ra, dec, detx, dety)."""
    ra_pnt, dec_pnt = float(row["RA_PNT"]), float(row["DEC_PNT"])
    ontime = float(row["ONTIME"])
    parts = []
    for source in sources:
        energy, ra, dec = sample_source_events(source, ontime, energy_range, rng)
        detx, dety = sky_to_fov(ra, dec, ra_pnt, dec_pnt)
        inside = (detx >= box[0]) & (detx < box[1]) & (dety >= box[2]) & (dety < box[3])
        parts.append((energy[inside], ra[inside], dec[inside], detx[inside], dety[inside]))
    if not parts:
        return tuple(np.zeros(0) for _ in range(5))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def _simulate_run(row, background, norm, sources, rng):
    """Events of one run, ordered by time; returns the column dict and the two counts."""
    e_edges = background.energy_axis.edges_canonical
    y_edges = background.dety_axis.edges_canonical
    x_edges = background.detx_axis.edges_canonical
    mu = expected_counts(background, norm * float(row["ONTIME"]))
    energy, dety, detx, _ = sample_binned_events(mu, e_edges, y_edges, x_edges, rng)
    ra, dec = fov_to_sky(detx, dety, float(row["RA_PNT"]), float(row["DEC_PNT"]))
    box = (x_edges[0], x_edges[-1], y_edges[0], y_edges[-1])
    s_energy, s_ra, s_dec, s_detx, s_dety = _source_events(
        sources, row, box, (e_edges[0], e_edges[-1]), rng
    )
    columns = {
        "ENERGY": np.concatenate([energy, s_energy]),
        "RA": np.concatenate([ra, s_ra]),
        "DEC": np.concatenate([dec, s_dec]),
        "DETX": np.concatenate([detx, s_detx]),
        "DETY": np.concatenate([dety, s_dety]),
    }
    n = columns["ENERGY"].size
    times = uniform_in_bins(
        np.array([float(row["TSTART"]), float(row["TSTOP"])]), np.zeros(n, dtype=np.int64), rng
    )
    order = np.argsort(times, kind="stable")
    columns = {name: values[order] for name, values in columns.items()}
    columns["TIME"] = times[order]
    columns["EVENT_ID"] = np.arange(1, n + 1, dtype=np.int64)
    return columns, energy.size, s_energy.size


def make_test_dataset(
    outdir: PathLike,
    n_obs: int = 10,
    az_range: QuantityLike = _AZ_RANGE,
    alt_range: QuantityLike = _ALT_RANGE,
    date_range: tuple[str, str] = _DATES,
    n_tels_range: tuple[int, int] = (3, 4),
    sigma: QuantityLike = _SIGMA,
    spectral_index: float = 2.7,
    random_state: Any = None,
    *,
    overwrite: bool = False,
    background: FOVCube | None = None,
    background_rate: QuantityLike = 60.0 * u.Hz,
    zenith_dependence: Callable[[Any], Any] = altitude_norm,
    efficiency_index: float = 0.0,
    sources: Sequence[Any] | None = None,
    point_at_sources: bool = True,
    wobble_offset: QuantityLike = 0.5 * u.deg,
    ontime: QuantityLike = 1800.0 * u.s,
    deadc_range: tuple[float, float] = (0.8, 0.95),
    obs_id_start: int = 1,
    compress_events: bool = False,
    write_bkg: bool = True,
) -> SimulatedDataset:
    """Simulate a GADF DL3 data set from a known background (and optional sources).

    Parameters
    ----------
    outdir : str or path
        Output folder; created if needed, must be empty unless ``overwrite``.
    n_obs : int
        Number of observations (runs).
    az_range, alt_range : `~astropy.coordinates.Angle`
        Pointing azimuth and altitude ranges at mid-run (see
        `bgcube.simulate.make_test_observation_table`).
    date_range : tuple of str or `~astropy.time.Time`
        Observation days.
    n_tels_range : tuple of int
        Inclusive range of N_TELS.
    sigma : `~astropy.coordinates.Angle`
        Width of the default background's Gaussian at the highest energy.
    spectral_index : float
        Power-law index of the default background's counts per bin.
    random_state : int, `numpy.random.Generator` or None
        Seed: the same seed gives the same files.
    overwrite : bool
        Write into a non-empty folder, replacing files of the same names.
    background : `~bgcube.FOVCube` or `~bgcube.FOVCubeBackgroundModel`, optional
        True rate at norm 1 per unit ONTIME, constant within its bins, in the
        RADEC field of view; it also fixes the field of view and energy range
        of the events. Default: `make_test_background` (``sigma``,
        ``spectral_index``, ``background_rate``).
    background_rate : `~astropy.units.Quantity`
        Default background only: total event rate at zenith, Hz.
    zenith_dependence : callable
        ``norm = zenith_dependence(alt_deg)``, applied per run to the
        background (default `altitude_norm`: 1 at zenith, 0.5 at horizon).
    efficiency_index : float
        The background of a run also scales as ``(MUONEFF / 0.8) **
        efficiency_index`` with its optical efficiency (0: no dependence).
    sources : list of `~bgcube.simulate.GaussianSource`, optional
        Gamma-ray sources (e.g. `bgcube.simulate.example_sources`).
    point_at_sources : bool
        With sources: point every run at a source with a wobble offset
        (cycling through them), so that the sources fall in the field of view.
    wobble_offset : `~astropy.units.Quantity`
        Pointing offset from the source.
    ontime : `~astropy.units.Quantity`
        ONTIME of each run.
    deadc_range : tuple of float
        Range of DEADC (LIVETIME / ONTIME).
    obs_id_start : int
        First OBS_ID.
    compress_events : bool
        Gzip the event files (``.fits.gz``); off by default because random
        float64 columns hardly compress and compression dominates the time.
    write_bkg : bool
        Add each run's true background rate as a BKG HDU (GADF BKG_3D).

    Returns
    -------
    dataset : SimulatedDataset
        The truth and the file locations; ``dataset.data_store()`` reads it.

    Raises
    ------
    bgcube.errors.OutputExistsError
        If ``outdir`` is not empty and ``overwrite`` is false.
    """
    path = _check_outdir(outdir, overwrite)
    rng = np.random.default_rng(random_state)
    if background is None:
        background = make_test_background(sigma, spectral_index, background_rate)
    rate = as_rate_cube(background)
    rate = rate.to_backend("numpy") if rate.backend != "numpy" else rate
    rate.meta.setdefault("FOVALIGN", "RADEC")
    rate.meta.setdefault("BKG_TIME", "ONTIME")
    sources = list(sources or [])

    targets = [(s.name, s.ra, s.dec) for s in sources] if point_at_sources else None
    obs_table = make_test_observation_table(
        n_obs,
        az_range,
        alt_range,
        date_range,
        n_tels_range,
        ontime=ontime,
        deadc_range=deadc_range,
        targets=targets,
        wobble_offset=wobble_offset,
        obs_id_start=obs_id_start,
        random_state=rng,
    )
    norms = np.asarray(zenith_dependence(np.asarray(obs_table["ALT_PNT"], dtype=float)), float)
    norms = np.broadcast_to(norms, (len(obs_table),)).copy()
    if efficiency_index:
        norms *= (np.asarray(obs_table["MUONEFF"], float) / 0.8) ** float(efficiency_index)
    run_rngs = rng.spawn(len(obs_table))

    n_bkg = np.zeros(len(obs_table), dtype=np.int64)
    n_src = np.zeros(len(obs_table), dtype=np.int64)
    index_rows, filenames = [], []
    for i, row in enumerate(obs_table):
        columns, n_bkg[i], n_src[i] = _simulate_run(row, rate, norms[i], sources, run_rngs[i])
        hdus = [files.events_hdu(row, obs_table.meta, columns), files.gti_hdu(row, obs_table.meta)]
        kinds = [("events", "events"), ("gti", "gti")]
        if write_bkg:
            run_rate = rate.copy(data=rate.data * norms[i])
            hdus.append(files.bkg_hdu(run_rate))
            kinds.append(("bkg", "bkg_3d"))
        name = files.event_file_name(row["OBS_ID"], compress_events)
        filename = path / DATA_DIR / name
        sizes = files.write_fits(hdus, filename, overwrite=overwrite)
        filenames.append(filename)
        for (hdu_type, hdu_class), hdu, size in zip(kinds, hdus, sizes, strict=True):
            index_rows.append(
                (int(row["OBS_ID"]), hdu_type, hdu_class, DATA_DIR, name, hdu.name, size)
            )

    obs_table.add_column(
        n_bkg + n_src, name="EVENT_COUNT", index=obs_table.colnames.index("TARGET_NAME")
    )
    e_lo, e_hi = rate.energy_axis.bounds.to_value(u.TeV)
    obs_table["SAFE_ENERGY_LO"] = np.full(len(obs_table), e_lo) * u.TeV
    obs_table["SAFE_ENERGY_HI"] = np.full(len(obs_table), e_hi) * u.TeV
    files.write_fits([files.obs_index_hdu(obs_table)], path / OBS_INDEX, overwrite=overwrite)
    hdu_index = files.hdu_index_table(index_rows)
    files.write_fits([fits.table_to_hdu(hdu_index)], path / HDU_INDEX, overwrite=overwrite)

    dataset = SimulatedDataset(path, obs_table, rate, norms, sources, n_bkg, n_src, filenames)
    dataset.true_model().write(path / TRUE_MODEL, overwrite=overwrite)
    files.write_fits(
        [files.bkg_hdu(rate), fits.table_to_hdu(_runs_table(dataset))],
        path / TRUTH,
        overwrite=overwrite,
    )
    if sources:
        with atomic_output(path / SOURCES, overwrite=overwrite) as tmp:
            dataset.sources_table().write(tmp, format="ascii.ecsv", overwrite=True)
    return dataset

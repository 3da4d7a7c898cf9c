"""Per-observation background models: zenith interpolation and a fitted norm.

A group model is the average background of the runs of a zenith (x
azimuth) box. A single run is better described by

* ``'interpolate'``: the models of the two groups whose centres bracket the
  run's cos(zenith), mixed linearly in cos(zenith) (as BAccMod does; the
  centre of a group is the time-weighted mean cos(zenith) of its runs, and a
  run outside the range of the centres takes the nearest group's model);
* ``'group'``: its own group's model unchanged;

optionally multiplied by a normalisation, either

* fitted to the run's own events outside its exclusion regions
  (``fit_norm``): for a pure norm the Poisson maximum-likelihood estimate is
  closed form, ``norm = sum(N) / sum(mu)`` over the fitted bins; or
* predicted from the run's optical efficiency (``efficiency_column``, e.g.
  the obs-index MUONEFF): ``norm = A (eff / eff_ref) ** index``, with ``A``
  and ``index`` one Poisson fit to the counts of all the build's runs
  (`fit_efficiency_scaling`). The background rate grows with the light the
  telescopes collect; a group averages over runs of different efficiency,
  and this puts the dependence back without using a run's own counts for
  its own norm more than through one shared two-parameter fit.

The per-run cubes live on the host (NumPy), in the binning of the run's own
group; a neighbour's model is resampled onto it with `resample_rate`
(`bgcube.make.zenith_interpolation`; the norms are in `bgcube.make.norms`).
`bgcube.make.gammapy_index` writes them as BKG_3D files for Gammapy.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..binning import row_energy_threshold
from ..cube import FOVCube
from ..data.exclusion import ExclusionRegions
from ..data.fill import fill_observation
from ..errors import BgcubeError
from ..model import FOVCubeBackgroundModel
from ..progress import progress_bar
from .norms import fit_efficiency_scaling, poisson_norm
from .zenith_interpolation import (
    _mix,
    cos_zenith_of,
    cos_zenith_weights,
    group_cos_zenith,
    interpolate_cos_zenith,
    resample_rate,
)

__all__ = [
    "PER_OBSERVATION_METHODS",
    "PerObservationModel",
    "group_cos_zenith",
    "resample_rate",
    "interpolate_cos_zenith",
    "cos_zenith_weights",
    "observation_counts",
    "poisson_norm",
    "fit_efficiency_scaling",
    "efficiency_of",
    "energy_threshold",
    "per_observation_models",
]

#: Accepted values of ``per_observation`` (None: no per-run models).
PER_OBSERVATION_METHODS = ("group", "interpolate")


@dataclass
class PerObservationModel:
    """The background model of one run.

    Attributes
    ----------
    obs_id : int
    group_id : int
        The run's own group.
    cos_zenith : float
        cos of the run's zenith angle.
    cube : `~bgcube.FOVCube`
        Rate in 1/(MeV s sr) per unit of the group models' time convention,
        norm not applied, NumPy backend.
    time_convention : {'ONTIME', 'LIVETIME'}
    norm : float
        Normalisation: fitted to the run, or from its optical efficiency (1
        when neither).
    n_counts, n_predicted : float
        Counts and un-normalised prediction in the fitted bins (NaN when not fitted).
    efficiency : float
        The run's optical efficiency when the norm comes from it, else NaN.
    """

    obs_id: int
    group_id: int
    cos_zenith: float
    cube: FOVCube
    time_convention: str = "ONTIME"
    norm: float = 1.0
    n_counts: float = float("nan")
    n_predicted: float = float("nan")
    efficiency: float = float("nan")

    @property
    def rate(self) -> FOVCube:
        """The run's rate cube with the norm applied."""
        return self.cube.copy(data=self.cube.data * self.norm)


def observation_counts(like, observation, regions=None, time_convention="ONTIME"):
    """One run's counts and time per bin, in the binning of ``like``, exclusions applied.

    The same filling as the models (`bgcube.data.fill.fill_observation`):
    events inside the regions are dropped and each pixel's time is the
    run's time times the pixel's kept fraction.

    Parameters
    ----------
    like : `~bgcube.FOVCube`
        Binning (its FOVALIGN must match the observation's DETX/DETY).
    observation : `~bgcube.data.observation.Observation`
    regions : `~bgcube.data.exclusion.ExclusionRegions`, optional
    time_convention : {'ONTIME', 'LIVETIME'}

    Returns
    -------
    counts : numpy.ndarray
        Shape of ``like``.
    time : numpy.ndarray
        Time per bin in s, shape of ``like``.
    """
    model = FOVCubeBackgroundModel.set_cube_binning(
        like.coordx_edges, like.coordy_edges, like.energy_edges, time_convention=time_convention
    )
    fill_observation(model, observation, regions)
    time = to_numpy(model.livetime_cube.data) * float(model.livetime_cube.unit.to(u.s))
    return to_numpy(model.counts_cube.data), np.broadcast_to(time, like.shape)


def energy_threshold(obs_table, obs_id):
    """A run's lower energy threshold in TeV from the observation index, or None.

    Looks in the columns `bgcube.binning.ENERGY_THRESHOLD_COLUMNS`
    (SAFE_ENERGY_LO first; `bgcube.binning.row_energy_threshold`).
    """
    rows = np.nonzero(np.asarray(obs_table["OBS_ID"]) == int(obs_id))[0]
    if rows.size == 0:
        return None
    return row_energy_threshold(obs_table[rows[0]])


def _fit_mask(cube, threshold, max_offset):
    e_lo = to_numpy(cube.energy_axis.edges_canonical)[:-1]
    mask = np.ones(cube.shape, dtype=bool)
    if threshold is not None:
        mask &= (e_lo >= threshold * (1 - 1e-6))[:, None, None]
    if max_offset is not None:
        cx = to_numpy(cube.detx_axis.centers.to_value(u.deg))
        cy = to_numpy(cube.dety_axis.centers.to_value(u.deg))
        offset = np.hypot(cx[None, :], cy[:, None])
        mask &= (offset <= u.Quantity(max_offset, u.deg).to_value(u.deg))[None, :, :]
    return mask


def per_observation_models(
    groups,
    store,
    regions=None,
    *,
    method="interpolate",
    fit_norm=False,
    efficiency_column=None,
    alignment="RADEC",
    time_convention="ONTIME",
    max_offset=None,
    fail_fast=False,
    progress=None,
):
    """A background model for each run of a set of group models.

    Parameters
    ----------
    groups : sequence of `~bgcube.make.pipeline.GroupResult`
        Group models (``.model``, ``.obs_ids``, ``.group_id``); groups
        without a model are skipped.
    store : `~bgcube.data.store.DataStore`
        For the observation index (zenith, time, threshold) and, with
        ``fit_norm``, the events.
    regions : `~bgcube.data.exclusion.ExclusionRegions`, optional
        Exclusion regions of the norm fit.
    method : {'interpolate', 'group'}
        See the module docstring.
    fit_norm : bool
        Fit each run's normalisation to its events outside the exclusion
        regions, in the energy bins above its threshold (obs-index
        SAFE_ENERGY_LO, when given) and within ``max_offset``.
    efficiency_column : str, optional
        Observation-index column of the runs' optical efficiency (e.g.
        ``'MUONEFF'``): each run's norm is ``A (eff / eff_ref) ** index``
        from `fit_efficiency_scaling` over all runs' counts in the same
        bins as ``fit_norm`` uses (``A`` for a run without a value). Not
        together with ``fit_norm``.
    alignment : {'RADEC', 'ALTAZ'}
        Field-of-view alignment of the models (to read the events for the fit).
    time_convention : {'ONTIME', 'LIVETIME'}
        Of the group models.
    max_offset : `~astropy.units.Quantity`, optional
        Fit only pixels whose centre is within this offset (default: all).
    fail_fast : bool
        Raise on an unreadable run (default: its norm stays 1, NaN counts).
    progress : bool, optional
        Progress bar over runs (default: when stderr is a terminal).

    Returns
    -------
    models : dict of int to PerObservationModel

    Raises
    ------
    ValueError
        Unknown method; ``fit_norm`` with ``efficiency_column``; the
        efficiency column is not in the observation index, or the runs do
        not span two efficiencies.
    """
    if method not in PER_OBSERVATION_METHODS:
        raise ValueError(f"method must be one of {PER_OBSERVATION_METHODS}, got {method!r}")
    if fit_norm and efficiency_column is not None:
        raise ValueError("fit_norm and efficiency_column are alternatives; give one of them")
    regions = ExclusionRegions.empty() if regions is None else regions
    groups = [g for g in groups if g.model is not None and g.obs_ids]
    obs_table = store.obs_table
    efficiency = None
    if efficiency_column is not None:
        efficiency = efficiency_of(obs_table, efficiency_column)
    time_column = time_convention if time_convention in obs_table.colnames else "ONTIME"
    nodes = [group_cos_zenith(obs_table, g.obs_ids, time_column) for g in groups]
    cubes = [g.model.background_cube for g in groups]
    cos_zenith = dict(
        zip(np.asarray(obs_table["OBS_ID"]).tolist(), cos_zenith_of(obs_table), strict=True)
    )
    resampled = {}  # (source group, target group) -> cube; few groups, many runs

    def on_binning_of(i, k):
        if (i, k) not in resampled:
            resampled[i, k] = resample_rate(cubes[i], cubes[k])
        return resampled[i, k]

    out = {}
    runs = [(g, k, obs_id) for k, g in enumerate(groups) for obs_id in g.obs_ids]
    for g, k, obs_id in progress_bar(runs, total=len(runs), desc="runs", enabled=progress):
        cos_zen = float(cos_zenith[int(obs_id)])
        weights = [(k, 1.0)]
        if method == "interpolate":
            weights = cos_zenith_weights(nodes, cos_zen)
        cube = _mix([(w, on_binning_of(i, k)) for i, w in weights])
        result = PerObservationModel(int(obs_id), g.group_id, cos_zen, cube, time_convention)
        if fit_norm or efficiency is not None:
            try:
                observation = store.observation(obs_id, fov_alignment=alignment)
                counts, time = observation_counts(cube, observation, regions, time_convention)
            except BgcubeError:
                if fail_fast:
                    raise
            else:
                mask = _fit_mask(cube, energy_threshold(obs_table, obs_id), max_offset)
                norm, result.n_counts, result.n_predicted = poisson_norm(cube, counts, time, mask)
                if fit_norm:
                    result.norm = norm if np.isfinite(norm) else 1.0
        out[int(obs_id)] = result
    if efficiency is not None:
        _apply_efficiency_scaling(out, efficiency)
    return out


def efficiency_of(obs_table, column):
    """OBS_ID -> optical efficiency from an observation-index column (NaN when masked).

    Raises
    ------
    ValueError
        If the column is not there (any case; the message lists the columns
        there are), or its finite positive values are not at least two
        distinct ones (no scaling can be fitted).
    """
    names = {name.upper(): name for name in obs_table.colnames}
    if column.upper() not in names:
        raise ValueError(
            f"no column {column!r} in the observation index (columns: {obs_table.colnames})"
        )
    values = np.ma.filled(np.ma.asarray(obs_table[names[column.upper()]], dtype=np.float64), np.nan)
    usable = np.unique(values[np.isfinite(values) & (values > 0)])
    if usable.size < 2:
        raise ValueError(
            f"observation-index column {column!r} has {usable.size} distinct positive "
            "value(s); an efficiency norm needs runs at two or more efficiencies"
        )
    return dict(zip(np.asarray(obs_table["OBS_ID"]).tolist(), values.tolist(), strict=True))


def _apply_efficiency_scaling(models, efficiency):
    """Set each run's norm from one efficiency scaling fitted over all runs."""
    ids = list(models)
    scale, index, eff_ref = fit_efficiency_scaling(
        [models[i].n_counts for i in ids],
        [models[i].n_predicted for i in ids],
        [efficiency[i] for i in ids],
    )
    for i in ids:
        eff = efficiency[i]
        models[i].efficiency = eff
        known = np.isfinite(eff) and eff > 0
        models[i].norm = scale * (eff / eff_ref) ** index if known else scale

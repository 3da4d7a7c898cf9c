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
group; a neighbour's model is resampled onto it with `resample_rate`.
`bgcube.make.gammapy_index` writes them as BKG_3D files for Gammapy.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..binning import ENERGY_THRESHOLD_COLUMNS
from ..cube import FOVCube
from ..data.exclusion import ExclusionRegions
from ..data.fill import fill_observation, progress_bar
from ..data.store import zenith_of
from ..errors import BgcubeError, ObservationError
from ..model import FOVCubeBackgroundModel

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


def group_cos_zenith(obs_table, obs_ids=None, time_column="ONTIME"):
    """Centre of a group: the time-weighted mean cos(zenith) of its runs.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        Observation index (ZEN_PNT or ALT_PNT; ``time_column`` if present).
    obs_ids : sequence of int, optional
        The group's runs (default: every row).
    time_column : str
        Weights; equal weights when the column is missing.

    Returns
    -------
    cos_zenith : float
    """
    table = obs_table
    if obs_ids is not None:
        keep = np.isin(np.asarray(obs_table["OBS_ID"]), np.asarray(list(obs_ids)))
        table = obs_table[keep]
    if len(table) == 0:
        raise ObservationError("cannot compute the centre of a group without observations")
    cos_zen = np.cos(np.radians(zenith_of(table)))
    if time_column in table.colnames:
        weights = u.Quantity(table[time_column], u.s).to_value(u.s)
    else:
        weights = np.ones(len(table))
    return float(np.sum(weights * cos_zen) / np.sum(weights))


def _same_edges(a, b):
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0.0)


def resample_rate(cube, like, *, oversample=3):
    """Mean of an interpolated rate cube over the bins of another cube.

    Along energy the integral of the interpolated cube (a power law between
    energy nodes, `FOVCube.evaluate_integral`) is exact; over each
    (DETY, DETX) pixel the interpolated values are averaged at
    ``oversample x oversample`` points. Bins outside ``cube`` get 0. A
    bin's mean is capped at the largest value of the source bins it
    overlaps and of their neighbours (which bounds any sub-bin mean of a
    monotonic rate): next to an empty (zero) bin the log interpolation is a
    power law of huge index, and where a target bin reaches past the
    outermost energy node its extension would otherwise explode. When the binnings
    are equal the values are copied unchanged.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        The rate (any backend).
    like : `~bgcube.FOVCube`
        Cube whose binning is wanted (its data are not used).
    oversample : int
        Points per pixel side (default 3).

    Returns
    -------
    resampled : `~bgcube.FOVCube`
        NumPy backend, binning of ``like``, unit and meta of ``cube``.
    """
    edges = [(a.edges_canonical, b.edges_canonical) for a, b in (
        (cube.energy_axis, like.energy_axis), (cube.dety_axis, like.dety_axis),
        (cube.detx_axis, like.detx_axis))]
    if all(_same_edges(to_numpy(a), to_numpy(b)) for a, b in edges):
        data = np.array(to_numpy(cube.data), dtype=np.float64)
    else:
        e = to_numpy(like.energy_axis.edges_canonical)
        ey = to_numpy(like.dety_axis.edges_canonical)
        ex = to_numpy(like.detx_axis.edges_canonical)
        frac = (np.arange(oversample) + 0.5) / oversample
        sub_y = (ey[:-1, None] + np.diff(ey)[:, None] * frac).ravel()  # (ny * k)
        sub_x = (ex[:-1, None] + np.diff(ex)[:, None] * frac).ravel()
        with np.errstate(over="ignore", invalid="ignore"):
            integral = cube.evaluate_integral(
                detx=sub_x[None, None, :] * u.deg,
                dety=sub_y[None, :, None] * u.deg,
                energy_min=e[:-1, None, None] * u.TeV,
                energy_max=e[1:, None, None] * u.TeV,
            )
            values = (integral / (np.diff(e)[:, None, None] * u.TeV)).to_value(cube.unit)
        n_e, n_y, n_x = e.size - 1, ey.size - 1, ex.size - 1
        data = values.reshape(n_e, n_y, oversample, n_x, oversample).mean(axis=(2, 4))
        data = np.fmin(data, _overlap_max(to_numpy(cube.data), [a for a, _ in edges],
                                          [b for _, b in edges]))
    return FOVCube(like.coordx_edges, like.coordy_edges, like.energy_edges,
                   data=data, scheme=cube.scheme, unit=cube.unit, meta=dict(cube.meta))


def _overlap_max(data, source_edges, target_edges):
    """Per target bin, the largest source value over the source bins it overlaps and their
    neighbours (0 if it overlaps none)."""
    out = np.asarray(data, dtype=np.float64)
    for axis, (src, tgt) in enumerate(zip(source_edges, target_edges, strict=True)):
        src, tgt = to_numpy(src), to_numpy(tgt)
        lo = np.searchsorted(src, tgt[:-1], side="right") - 1  # first overlapping source bin
        hi = np.searchsorted(src, tgt[1:], side="left")  # one past the last
        overlaps = (tgt[1:] > src[0]) & (tgt[:-1] < src[-1])
        lo, hi = np.clip(lo - 1, 0, src.size - 1), np.clip(hi + 1, 0, src.size - 1)
        moved = np.moveaxis(out, axis, 0)
        rows = [moved[a:b].max(axis=0) if ok else np.zeros(moved.shape[1:])
                for a, b, ok in zip(lo, hi, overlaps, strict=True)]
        out = np.moveaxis(np.stack(rows), 0, axis)
    return out


def interpolate_cos_zenith(cubes, cos_zenith_nodes, cos_zenith, *, like=None, oversample=3):
    """A rate cube interpolated linearly in cos(zenith) between neighbouring nodes.

    Outside the range of the nodes the nearest node's cube is returned
    (clamped, not extrapolated). The two neighbours are resampled onto
    ``like`` first (`resample_rate`).

    Parameters
    ----------
    cubes : sequence of `~bgcube.FOVCube`
        One rate cube per node.
    cos_zenith_nodes : sequence of float
        cos(zenith) of each cube (distinct).
    cos_zenith : float
        Where to interpolate.
    like : `~bgcube.FOVCube`, optional
        Output binning (default: the cube of the node nearest ``cos_zenith``).
    oversample : int
        See `resample_rate`.

    Returns
    -------
    cube : `~bgcube.FOVCube`
        NumPy backend.

    Raises
    ------
    ValueError
        If there are no cubes, lengths differ or nodes repeat.
    """
    nodes = np.asarray(cos_zenith_nodes, dtype=np.float64)
    if len(cubes) == 0 or nodes.shape != (len(cubes),):
        raise ValueError(f"need one node per cube, got {nodes.size} nodes for {len(cubes)} cubes")
    if like is None:
        like = cubes[int(np.argmin(np.abs(nodes - float(cos_zenith))))]
    return _mix([(w, resample_rate(cubes[i], like, oversample=oversample))
                 for i, w in cos_zenith_weights(nodes, cos_zenith)])


def cos_zenith_weights(cos_zenith_nodes, cos_zenith):
    """Linear-interpolation weights in cos(zenith), clamped at the outermost nodes.

    Parameters
    ----------
    cos_zenith_nodes : sequence of float
        Distinct nodes, any order.
    cos_zenith : float

    Returns
    -------
    weights : list of (int, float)
        (index into the nodes, weight) pairs, weights summing to 1: one
        pair outside the range of the nodes (or on a node), else two.
    """
    nodes = np.asarray(cos_zenith_nodes, dtype=np.float64)
    if nodes.ndim != 1 or nodes.size == 0 or np.unique(nodes).size != nodes.size:
        raise ValueError(f"cos(zenith) nodes must be distinct values, got {nodes.tolist()}")
    order = np.argsort(nodes)
    sorted_nodes = nodes[order]
    c = float(cos_zenith)
    if c <= sorted_nodes[0]:
        return [(int(order[0]), 1.0)]
    if c >= sorted_nodes[-1]:
        return [(int(order[-1]), 1.0)]
    hi = int(np.searchsorted(sorted_nodes, c, side="right"))
    lo = hi - 1
    weight = (c - sorted_nodes[lo]) / (sorted_nodes[hi] - sorted_nodes[lo])
    return [(int(order[lo]), 1.0 - weight), (int(order[hi]), weight)]


def _mix(weighted):
    """sum(w * cube) of (weight, cube) pairs on one binning, in the first cube's unit."""
    first = weighted[0][1]
    data = sum(w * to_numpy(c.data) * float(c.unit.to(first.unit)) for w, c in weighted)
    return first.copy(data=np.asarray(data, dtype=np.float64))


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


def poisson_norm(rate_cube, counts, time, mask=None):
    """Poisson maximum-likelihood normalisation of a rate cube to observed counts.

    With ``mu = rate * time * dE * dOmega`` (flat solid angle, as the
    models are made), maximising ``sum(N log(n mu) - n mu)`` over the norm
    ``n`` gives ``n = sum(N) / sum(mu)`` over the bins used.

    Parameters
    ----------
    rate_cube : `~bgcube.FOVCube`
        Rate (unit convertible to 1/(MeV s sr)).
    counts, time : array_like
        Observed counts and time per bin (s), shape of the cube.
    mask : array_like of bool, optional
        Bins to use (broadcast to the cube; default all).

    Returns
    -------
    norm : float
        NaN when the prediction in the used bins is zero.
    n_counts, n_predicted : float
        ``sum(N)`` and ``sum(mu)`` over the used bins.
    """
    rate = to_numpy(rate_cube.data) * float(rate_cube.unit.to("1 / (TeV s sr)"))
    mu = rate * np.asarray(time, dtype=np.float64) * to_numpy(rate_cube.bin_volume_array())
    use = np.ones(rate_cube.shape, dtype=bool) if mask is None else np.broadcast_to(
        np.asarray(mask, dtype=bool), rate_cube.shape)
    n_counts = float(np.sum(np.asarray(counts, dtype=np.float64)[use]))
    n_predicted = float(np.sum(mu[use]))
    norm = n_counts / n_predicted if n_predicted > 0 else float("nan")
    return norm, n_counts, n_predicted


def fit_efficiency_scaling(n_counts, n_predicted, efficiency, *, max_iterations=50):
    """Poisson fit of ``N_i = A (eff_i / eff_ref) ** index * P_i`` over runs.

    Parameters
    ----------
    n_counts, n_predicted : array_like
        Per run: observed counts and un-normalised prediction in the fitted bins.
    efficiency : array_like
        Per run: optical efficiency (any positive scale, e.g. MUONEFF).
        Runs with a non-finite or non-positive efficiency or prediction are
        left out of the fit.
    max_iterations : int
        Newton steps at the most (the likelihood is concave in ``log A``
        and ``index``; a few steps suffice).

    Returns
    -------
    scale : float
        ``A``, the norm of a run at ``eff_ref``.
    index : float
        ``index``, the power of the efficiency.
    eff_ref : float
        The prediction-weighted geometric mean efficiency of the fitted runs.

    Raises
    ------
    ValueError
        Fewer than two usable runs, or all at one efficiency.
    """
    counts = np.asarray(n_counts, dtype=np.float64)
    predicted = np.asarray(n_predicted, dtype=np.float64)
    eff = np.asarray(efficiency, dtype=np.float64)
    use = np.isfinite(counts) & (predicted > 0) & np.isfinite(predicted) & (eff > 0) & np.isfinite(eff)
    counts, predicted, eff = counts[use], predicted[use], eff[use]
    if counts.size < 2 or np.ptp(eff) == 0:
        raise ValueError(
            f"an efficiency scaling needs runs at two or more efficiencies, got {counts.size} "
            "usable run(s)"
        )
    log_ref = float(np.sum(predicted * np.log(eff)) / np.sum(predicted))
    x = np.log(eff) - log_ref
    log_scale, index = float(np.log(counts.sum() / predicted.sum())), 0.0
    for _ in range(max_iterations):
        mu = predicted * np.exp(log_scale + index * x)
        gradient = np.array([np.sum(counts - mu), np.sum(x * (counts - mu))])
        hessian = np.array([[np.sum(mu), np.sum(x * mu)], [np.sum(x * mu), np.sum(x * x * mu)]])
        step = np.linalg.solve(hessian, gradient)
        log_scale, index = log_scale + step[0], index + step[1]
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(np.exp(log_scale)), float(index), float(np.exp(log_ref))


def energy_threshold(obs_table, obs_id):
    """A run's lower energy threshold in TeV from the observation index, or None.

    Looks in the columns `bgcube.binning.ENERGY_THRESHOLD_COLUMNS`
    (SAFE_ENERGY_LO first).
    """
    rows = np.nonzero(np.asarray(obs_table["OBS_ID"]) == int(obs_id))[0]
    if rows.size == 0:
        return None
    for name in ENERGY_THRESHOLD_COLUMNS:
        if name in obs_table.colnames:
            column = obs_table[name]
            value = u.Quantity(column[rows[0]], column.unit or u.TeV).to_value(u.TeV)
            if np.isfinite(value) and value > 0:
                return float(value)
    return None


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
    zenith = dict(zip(np.asarray(obs_table["OBS_ID"]).tolist(), zenith_of(obs_table), strict=True))
    resampled = {}  # (source group, target group) -> cube; few groups, many runs

    def on_binning_of(i, k):
        if (i, k) not in resampled:
            resampled[i, k] = resample_rate(cubes[i], cubes[k])
        return resampled[i, k]

    out = {}
    runs = [(g, k, obs_id) for k, g in enumerate(groups) for obs_id in g.obs_ids]
    for g, k, obs_id in progress_bar(runs, total=len(runs), desc="runs", enabled=progress):
        cos_zen = float(np.cos(np.radians(zenith[int(obs_id)])))
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
        [models[i].n_counts for i in ids], [models[i].n_predicted for i in ids],
        [efficiency[i] for i in ids],
    )
    for i in ids:
        eff = efficiency[i]
        models[i].efficiency = eff
        known = np.isfinite(eff) and eff > 0
        models[i].norm = scale * (eff / eff_ref) ** index if known else scale

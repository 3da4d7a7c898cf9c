"""Group models at a run's zenith: group centres in cos(zenith), resampling, interpolation.

A run's model under ``per_observation='interpolate'`` mixes the models of
the two groups whose centres bracket its cos(zenith) (`cos_zenith_weights`,
`interpolate_cos_zenith`); a neighbour's model is first resampled onto the
run's own group binning (`resample_rate`). Used by
`bgcube.make.per_observation` and the model sources of apply-models.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..cube import FOVCube
from ..data.store import zenith_of
from ..errors import ObservationError

__all__ = [
    "cos_zenith_of",
    "group_cos_zenith",
    "resample_rate",
    "interpolate_cos_zenith",
    "cos_zenith_weights",
]


def cos_zenith_of(obs_table):
    """cos of each run's zenith angle (`~bgcube.data.store.zenith_of`), in the column's precision.

    The one formula of the per-run models of make-models and apply-models: a
    float32 ZEN_PNT column gives float32 values, the same in both.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        Observation index (ZEN_PNT or ALT_PNT, deg).

    Returns
    -------
    cos_zenith : numpy.ndarray
    """
    return np.cos(np.radians(zenith_of(obs_table)))


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
    cos_zen = cos_zenith_of(table)
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
    edges = [
        (a.edges_canonical, b.edges_canonical)
        for a, b in (
            (cube.energy_axis, like.energy_axis),
            (cube.dety_axis, like.dety_axis),
            (cube.detx_axis, like.detx_axis),
        )
    ]
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
        data = np.fmin(
            data, _overlap_max(to_numpy(cube.data), [a for a, _ in edges], [b for _, b in edges])
        )
    return FOVCube(
        like.coordx_edges,
        like.coordy_edges,
        like.energy_edges,
        data=data,
        scheme=cube.scheme,
        unit=cube.unit,
        meta=dict(cube.meta),
    )


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
        rows = [
            moved[a:b].max(axis=0) if ok else np.zeros(moved.shape[1:])
            for a, b, ok in zip(lo, hi, overlaps, strict=True)
        ]
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
    return _mix(
        [
            (w, resample_rate(cubes[i], like, oversample=oversample))
            for i, w in cos_zenith_weights(nodes, cos_zenith)
        ]
    )


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

"""Validate background models on the H.E.S.S. DL3 DR1 runs
=======================================================

Validate bgcube's background models on the 105 runs of H.E.S.S. DL3 DR1.

Usage::

    python examples/validate_hess_dr1.py OUTDIR [--variants] [--obs-ids 23523,23526] [--overwrite]

The data are found through ``bgcube.datasets.get_path('hess-dl3-dr1')``
(``$BGCUBE_DATA`` or ``../shared/data``). For each run, the counts observed
in its field of view are compared with the counts predicted by

* our model: `bgcube.make.make_models` on the same runs, with exclusion
  circles around each run's target and the known sources of the fields
  (`bgcube.data.default_exclusion_regions`), and
* the published model in the run's ``BKG`` HDU (Mohrmann et al. 2019).

Both predictions are made the same way, on the run's own analysis binning:
RADEC field-of-view pixels of ``PIXEL`` deg whose centre lies within
``MAX_OFFSET`` of the pointing, energy bins of ``ENERGY_STEP_DEX`` from the
run's SAFE_ENERGY_LO to ``ENERGY_MAX`` (10 TeV: above, the background is
a fraction of a percent of the counts, and zero-valued bins of the published
cubes make Gammapy's log interpolation explode near 100 TeV). Predicted counts in a bin are ``ONTIME x
solid angle x kept fraction x integral over the bin's energies`` of the model
interpolated at the pixel centre (`FOVCube.evaluate_integral`, Gammapy's
rule); the kept fraction is the part of the pixel outside the exclusion
circles (`bgcube.data.kept_fraction`), and observed events inside them are
dropped. An ALTAZ model is rotated into the run's RADEC frame, averaged over
the field rotation during the run.

The joint model (the default, variant ``joint``) is tested out of sample by
leave-one-out (`JointModels`): each run is predicted by a model fitted
without it (``--folds K`` for k-fold by run instead). For the group models, the
``leave-one-out`` predictions remove each run from its own group model
before predicting it (its counts and time are subtracted, then rate and
smoothing recomputed), an out-of-sample test.

Outputs in OUTDIR: ``validation_runs.ecsv`` (one row per run),
``validation_summary.ecsv``, ``validation_variants.ecsv`` (with
``--variants``), the PNG figures and the models (``models/``).

This work made use of data from the H.E.S.S. DL3 public test data release 1
(HESS DL3 DR1, H.E.S.S. collaboration, 2018). No scientific claim about the
sources is made or may be derived from these comparisons.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.data import DataStore, excluded_events, kept_fraction
from bgcube.data.fov import altaz_field_rotation, radec_fov_to_altaz_fov
from bgcube.data.store import zenith_of
from bgcube.datasets import get_path
from bgcube.io.atomic import atomic_output
from bgcube.make import make_models
from bgcube.make.per_observation import (
    cos_zenith_weights,
    energy_threshold,
    fit_efficiency_scaling,
    group_cos_zenith,
    observation_counts,
    resample_rate,
)
from bgcube.make.pipeline import resolve_exclusion

#: Analysis region: pixel centres within this offset of the pointing, deg.
MAX_OFFSET = 2.0
#: Analysis pixel size, deg (the published models' bin size).
PIXEL = 0.1
#: Analysis energy bins, dex (the first bin of a run starts at its threshold).
ENERGY_STEP_DEX = 0.1
ENERGY_MIN, ENERGY_MAX = 0.1, 10.0
#: Offset rings of the radial profiles, deg.
RADIAL_EDGES = np.arange(0.0, MAX_OFFSET + 1e-9, 0.25)
#: High-latitude ("extragalactic") fields: |b| of the pointing above this, deg.
GLAT_MIN = 10.0
#: Sampling of the field rotation for ALTAZ models, s.
ROTATION_STEP = 60.0

#: Variants of the models: ``make`` (make_models keywords), ``per_run`` ('group'
#: or 'interpolate' in cos zenith), ``train`` ('extragalactic': build the models
#: from the |b| > GLAT_MIN runs only; default all runs) and ``passes`` (smooth
#: the group rates with this many k5a passes instead of the default 3-5).
VARIANTS = {
    "joint": dict(joint=True),
    "joint, all runs fitted": dict(joint=True, fit_glat_min=0.0),
    "joint, no night effect": dict(joint=True, night_sigma=0.0),
    "joint, no run effects": dict(joint=True, run_sigma=0.0),
    "joint, no condition on the FoV shape": dict(joint=True, spatial_conditions=()),
    "joint, linear conditions": dict(joint=True, conditions=("ZEN_PNT:cos:1", "MUONEFF:log:1")),
    "default": dict(make={"model": "groups"}, per_run="group"),
    "michi": dict(make={"model": "groups", "method": "michi"}, per_run="group"),
    "interpolate": dict(make={"model": "groups"}, per_run="interpolate"),
    "michi+interpolate": dict(make={"model": "groups", "method": "michi"}, per_run="interpolate"),
    "3 zenith groups": dict(
        make={"model": "groups", "zenith_edges": (0, 25, 40, 70)}, per_run="group"
    ),
    "min_observations=10": dict(make={"model": "groups", "min_observations": 10}, per_run="group"),
    "altaz": dict(make={"model": "groups", "alignment": "ALTAZ"}, per_run="group"),
    "altaz+1 pass+interpolate": dict(make={"alignment": "ALTAZ"}, per_run="interpolate", passes=1),
    "no smoothing": dict(make={"model": "groups", "smooth": False}, per_run="group"),
    "no smoothing+interpolate": dict(
        make={"model": "groups", "smooth": False}, per_run="interpolate"
    ),
    "|b|>10 runs+interpolate": dict(
        make={"model": "groups"}, per_run="interpolate", train="extragalactic"
    ),
    "|b|>10 runs+michi+interpolate": dict(
        make={"method": "michi"}, per_run="interpolate", train="extragalactic"
    ),
    "|b|>10 runs+no smoothing+interpolate": dict(
        make={"smooth": False}, per_run="interpolate", train="extragalactic"
    ),
    "1 pass+interpolate": dict(make={"model": "groups"}, per_run="interpolate", passes=1),
    "1 pass+michi+interpolate": dict(
        make={"model": "groups", "method": "michi"}, per_run="interpolate", passes=1
    ),
    "|b|>10 runs+1 pass+interpolate": dict(
        make={}, per_run="interpolate", train="extragalactic", passes=1
    ),
    "|b|>10 runs+1 pass+michi+interpolate": dict(
        make={"method": "michi"}, per_run="interpolate", train="extragalactic", passes=1
    ),
    "michi+no smoothing+interpolate": dict(
        make={"method": "michi", "smooth": False}, per_run="interpolate"
    ),
}
#: The variant the script reports by default: the joint model, make-models' default.
CHOSEN = "joint"
#: Folds of the out-of-sample test of the joint model: 0 for leave-one-out
#: (every fitted run left out in turn: no arbitrary fold assignment), else
#: k-fold by run (run i in OBS_ID order in fold i % FOLDS).
FOLDS = 0

FIGURES = (
    "validation_ratio_per_run.png",
    "validation_radial_profiles.png",
    "validation_spectra.png",
)


# ----------------------------------------------------------------------------
# the analysis binning of one run
@dataclass
class RunGeometry:
    """Pixels and energy bins of one run's analysis, and its observed counts."""

    obs_id: int
    ontime: float  # s
    threshold: float  # TeV
    detx: np.ndarray  # pixel centres used, deg
    dety: np.ndarray
    weight: np.ndarray  # solid angle x kept fraction, sr
    ring: np.ndarray  # radial bin of each pixel
    energy_edges: np.ndarray  # TeV, first edge = threshold
    energy_index: np.ndarray  # index of each energy bin on the common grid
    observed: np.ndarray  # counts per (energy bin, pixel)
    ra_pnt: float = 0.0
    dec_pnt: float = 0.0
    rotation: tuple = field(default=((0.0,), (1.0,)))  # ALTAZ: (angles, weights)


def common_energy_edges():
    """The analysis energy grid, TeV (ENERGY_STEP_DEX steps from ENERGY_MIN to ENERGY_MAX)."""
    n = int(round(np.log10(ENERGY_MAX / ENERGY_MIN) / ENERGY_STEP_DEX))
    return ENERGY_MIN * 10 ** (ENERGY_STEP_DEX * np.arange(n + 1))


def pixel_edges():
    """DETX = DETY edges of the analysis pixels, deg."""
    n = int(round(2 * MAX_OFFSET / PIXEL))
    return np.linspace(-MAX_OFFSET, MAX_OFFSET, n + 1)


def run_geometry(observation, regions, threshold, rotation=False):
    """Analysis binning, exclusion weights and observed counts of one run.

    With ``rotation``, also the field rotation during the run (for ALTAZ models).
    """
    edges = pixel_edges()
    centres = 0.5 * (edges[1:] + edges[:-1])
    cx, cy = np.meshgrid(centres, centres)
    offset = np.hypot(cx, cy)
    use = offset < MAX_OFFSET
    kept = kept_fraction(regions, observation.ra_pnt, observation.dec_pnt, edges, edges)
    area = np.radians(PIXEL) ** 2  # flat dx * dy, as the models' rates
    grid = common_energy_edges()
    # thresholds read as float32 sit just below a grid edge: snap them to it
    first = max(int(np.searchsorted(grid, threshold * (1 + 1e-6), side="right")) - 1, 0)
    energy_edges = grid[first:].copy()
    energy_edges[0] = max(threshold, grid[first])

    events = observation.events
    keep = ~excluded_events(observation, regions)
    ix = np.floor((events.detx - edges[0]) / PIXEL).astype(np.int64)
    iy = np.floor((events.dety - edges[0]) / PIXEL).astype(np.int64)
    n_pix = edges.size - 1
    inside = keep & (ix >= 0) & (ix < n_pix) & (iy >= 0) & (iy < n_pix)
    inside &= (events.energy >= energy_edges[0]) & (events.energy < energy_edges[-1])
    pixel_id = np.full(n_pix * n_pix, -1)
    pixel_id[np.flatnonzero(use)] = np.arange(int(use.sum()))
    pix = pixel_id[iy[inside] * n_pix + ix[inside]]
    ebin = np.searchsorted(energy_edges, events.energy[inside], side="right") - 1
    ok = pix >= 0
    observed = np.zeros((energy_edges.size - 1, int(use.sum())))
    np.add.at(observed, (ebin[ok], pix[ok]), 1.0)
    return RunGeometry(
        obs_id=observation.obs_id,
        ontime=float(observation.ontime.to_value(u.s)),
        threshold=float(threshold),
        detx=cx[use],
        dety=cy[use],
        weight=(area * kept)[use],
        ring=np.digitize(offset[use], RADIAL_EDGES) - 1,
        energy_edges=energy_edges,
        energy_index=np.arange(first, grid.size - 1),
        observed=observed,
        ra_pnt=observation.ra_pnt,
        dec_pnt=observation.dec_pnt,
        rotation=_rotation(observation) if rotation else ((0.0,), (1.0,)),
    )


def _rotation(observation):
    """Field-rotation angles over the run (deg) and their weights, for ALTAZ models."""
    gti, location, ref = observation.gti, observation.location, observation.time_ref
    if gti is None or location is None or ref is None or len(gti) == 0:
        return (0.0,), (1.0,)
    seconds = np.concatenate(
        [
            np.arange(lo, hi, ROTATION_STEP) + 0.5 * min(ROTATION_STEP, hi - lo)
            for lo, hi in zip(gti.start, gti.stop, strict=True)
        ]
    )
    angles = altaz_field_rotation(
        ref + seconds * u.s, observation.ra_pnt, observation.dec_pnt, location
    )
    angles = np.round(np.unwrap(angles, period=360.0) / 2.0) * 2.0  # 2-deg buckets
    values, counts = np.unique(angles, return_counts=True)
    return tuple(values.tolist()), tuple((counts / counts.sum()).tolist())


def predict(cube, geometry, time):
    """Predicted counts per (energy bin, pixel) of a rate cube over a run's analysis bins.

    ``time`` (s) multiplies the rate: ONTIME for ONTIME models. An ALTAZ
    cube is evaluated at the rotated pixel centres, averaged over the run.
    """
    e = geometry.energy_edges
    angles, weights = ((0.0,), (1.0,))
    if cube.meta.get("FOVALIGN", "RADEC") == "ALTAZ":
        angles, weights = geometry.rotation
    total = 0.0
    for angle, w in zip(angles, weights, strict=True):
        x, y = geometry.detx, geometry.dety
        if cube.meta.get("FOVALIGN", "RADEC") == "ALTAZ":
            x, y = radec_fov_to_altaz_fov(x, y, angle)
        integral = cube.evaluate_integral(
            detx=x[None, :] * u.deg,
            dety=y[None, :] * u.deg,
            energy_min=e[:-1, None] * u.TeV,
            energy_max=e[1:, None] * u.TeV,
        )
        total = total + w * integral.to_value(1 / (u.s * u.sr))
    return total * geometry.weight[None, :] * time


# ----------------------------------------------------------------------------
# our per-run models: in-sample or leave-one-out, group or interpolated
def leave_one_out(model, counts, time, passes=None):
    """The group model without one run: its counts and time subtracted, rate re-smoothed.

    ``passes``: smoothing passes (None: the default number, 0: no smoothing).
    """
    c = model.counts_cube
    t = model.livetime_cube
    counts_left = np.clip(np.asarray(c.data) - counts, 0.0, None)
    time_left = np.clip(np.asarray(t.data) * float(t.unit.to(u.s)) - time, 0.0, None)
    loo = FOVCubeBackgroundModel(
        c.copy(data=counts_left),
        t.copy(data=time_left / float(t.unit.to(u.s))),
        time_convention=model.time_convention,
    )
    loo.compute_rate()
    loo.background_cube.meta.update(model.background_cube.meta)
    if passes != 0:
        loo.smooth(passes)
    return loo.background_cube


def resmooth(result, passes):
    """Recompute each group's rate from its cubes and smooth it with ``passes`` passes."""
    for group in result.groups:
        if group.model is not None:
            meta = dict(group.model.background_cube.meta)
            group.model.compute_rate()
            group.model.background_cube.meta.update(meta)
            if passes:
                group.model.smooth(passes)


class OurModels:
    """Per-run rate cubes from make_models' groups (group or cos-zenith interpolated)."""

    def __init__(self, result, store, per_run="group", passes=None):
        self.groups = [g for g in result.groups if g.model is not None]
        self.per_run = per_run
        self.passes = passes
        self.store = store
        self.cubes = [g.model.background_cube for g in self.groups]
        self.nodes = [group_cos_zenith(store.obs_table, g.obs_ids) for g in self.groups]
        self.group_of = {i: k for k, g in enumerate(self.groups) for i in g.obs_ids}
        zen = zenith_of(store.obs_table)
        self.cos_zenith = dict(
            zip(
                np.asarray(store.obs_table["OBS_ID"]).tolist(), np.cos(np.radians(zen)), strict=True
            )
        )
        self._resampled = {}

    def _on(self, i, k):
        if (i, k) not in self._resampled:
            self._resampled[i, k] = resample_rate(self.cubes[i], self.cubes[k])
        return self._resampled[i, k]

    def group_index(self, obs_id):
        """Index of the run's group: its own, else the one whose zenith range holds it."""
        if obs_id in self.group_of:
            return self.group_of[obs_id]
        zenith = np.degrees(np.arccos(self.cos_zenith[obs_id]))
        for k, g in enumerate(self.groups):
            if g.zenith_range[0] <= zenith < g.zenith_range[1]:
                return k
        return int(np.argmin(np.abs(np.array(self.nodes) - self.cos_zenith[obs_id])))

    def cube(self, obs_id, observation=None, regions=None):
        """The run's rate cube; with ``observation``, leave the run out of its group.

        A run that is not in any group (not used for the models) gets the
        same cube either way.
        """
        k = self.group_index(obs_id)
        group = self.groups[k]
        own, nodes = self.cubes[k], list(self.nodes)
        if observation is not None and obs_id in self.group_of:
            others = [i for i in group.obs_ids if i != obs_id]
            if not others:
                return None  # a one-run group has nothing left
            counts, time = observation_counts(
                own, observation, regions, group.model.time_convention
            )
            own = leave_one_out(group.model, counts, time, self.passes)
            nodes[k] = group_cos_zenith(self.store.obs_table, others)
        weights = [(k, 1.0)]
        if self.per_run == "interpolate" and len(self.groups) > 1:
            weights = cos_zenith_weights(nodes, self.cos_zenith[obs_id])
        parts = [(w, own if i == k else self._on(i, k)) for i, w in weights]
        data = sum(w * np.asarray(c.data) * float(c.unit.to(own.unit)) for w, c in parts)
        return own.copy(data=data)


# ----------------------------------------------------------------------------
# the joint model: in-sample, and k-fold out of sample
class JointModels:
    """Per-run rate cubes of the joint model, in-sample and out of sample.

    The runs' counts and exposure cubes are read once (`bgcube.make.joint`);
    the in-sample model is fitted like ``bgcube make-models`` does. Out of
    sample, with ``folds=0`` every fitted run is predicted by a model fitted
    without it (leave-one-out; a run not fitted, e.g. near the Galactic
    plane, by the in-sample model, which never saw its counts); with
    ``folds=k`` for fold ``f`` a model is fitted without the runs of fold
    ``f`` (runs in ascending OBS_ID order, run ``i`` in fold ``i % k``). A
    run's night effect is estimated from the other runs of its night, never
    from its own counts.
    """

    def __init__(self, store, regions, *, folds=FOLDS, progress=False, **options):
        from bgcube.fit.joint import DEFAULT_CONDITIONS, DEFAULT_SPATIAL_CONDITIONS, JointModelSpec
        from bgcube.fit.joint_fitting import fit_joint_model
        from bgcube.make.joint import (
            condition_table,
            fit_run_mask,
            read_run_cubes,
            resolve_conditions,
            run_tasks,
        )

        spec = JointModelSpec()
        for key in JointModelSpec.__dataclass_fields__:
            if options.get(key) is not None:
                spec = dataclasses.replace(spec, **{key: options[key]})
        table = condition_table(store, store.obs_table, options.get("conditions"))
        cubes = read_run_cubes(
            run_tasks(store, table["OBS_ID"], spec, regions), spec, progress=progress
        )
        index = {int(i): k for k, i in enumerate(np.asarray(table["OBS_ID"]))}
        table = table[np.array([index[i] for i in cubes.obs_ids])]
        fitted, _ = fit_run_mask(table, options.get("fit_glat_min", 10.0))
        conditions = resolve_conditions(options.get("conditions"), DEFAULT_CONDITIONS, table)
        spatial = resolve_conditions(
            options.get("spatial_conditions"), DEFAULT_SPATIAL_CONDITIONS, table
        )
        thresholds = np.array([energy_threshold(store.obs_table, i) or 0.0 for i in cubes.obs_ids])

        def fit(mask):
            return fit_joint_model(
                cubes.counts,
                cubes.exposure,
                thresholds,
                table,
                fitted=mask,
                spec=spec,
                conditions=conditions,
                spatial_conditions=spatial,
            )

        self.table, self.obs_ids, self.fitted = table, list(cubes.obs_ids), fitted
        self.model = fit(fitted)
        if folds:
            fold = np.arange(len(self.obs_ids)) % folds
        else:  # leave-one-out: each fitted run its own fold, the others in none
            fold = np.where(fitted, np.cumsum(fitted) - 1, -1)
        self.fold_of = dict(zip(self.obs_ids, fold.tolist(), strict=True))
        n_folds = int(fold.max()) + 1
        steps = range(n_folds)
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="out-of-sample fits", unit="fit")
        self.fold_models = [fit(fitted & (fold != f)) for f in steps]
        self.group_of = {i: 0 for i, f in zip(self.obs_ids, fitted, strict=True) if f}

    def _row(self, obs_id):
        return self.table[self.obs_ids.index(obs_id)]

    def cube(self, obs_id, out_of_sample=False):
        """The run's rate cube (in-sample, or from the model of the run's fold)."""
        fold = self.fold_of[obs_id]
        model = self.fold_models[fold] if out_of_sample and fold >= 0 else self.model
        return model.background(self._row(obs_id))


def run_joint_variant(
    store, name, regions, glat, *, with_published=True, progress=False, folds=FOLDS
):
    """Predict every run with the joint model (in-sample and out of sample); as `run_variant`."""
    spec = VARIANTS[name]
    options = {k: v for k, v in spec.items() if k != "joint"}
    ours = JointModels(store, regions, folds=folds, progress=progress, **options)
    predictions = {}
    for obs_id in ours.obs_ids:
        predictions[obs_id] = (
            ours.cube(obs_id),
            ours.cube(obs_id, out_of_sample=True),
            obs_id in ours.group_of,
            0,
        )
    return _predict_runs(
        store, name, regions, glat, predictions, "ONTIME", "RADEC", with_published=with_published
    )


# ----------------------------------------------------------------------------
# running one variant
def _glat(obs_table):
    if "GLAT_PNT" in obs_table.colnames:
        return np.asarray(u.Quantity(obs_table["GLAT_PNT"], u.deg).to_value(u.deg))
    c = SkyCoord(obs_table["RA_PNT"], obs_table["DEC_PNT"], unit="deg")
    return c.galactic.b.deg


def _published(store, obs_id):
    path, hdu = store.hdu_location(obs_id, "bkg")
    return FOVCube.read(path, hdu=hdu)


def run_variant(
    store, outdir, name, *, overwrite=False, with_published=True, progress=False, folds=FOLDS
):
    """Build the models of one variant and predict every run.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per run (see `validate`).
    profiles : dict
        Per-run arrays (n_runs, n_rings) and (n_runs, n_energy) of observed
        and predicted counts, for the plots.
    """
    spec = VARIANTS[name]
    safe = name.replace(" ", "_").replace("+", "_").replace("=", "").replace("|", "")
    obs_table = store.obs_table
    ids = np.asarray(obs_table["OBS_ID"]).tolist()
    glat = dict(zip(ids, _glat(obs_table), strict=True))
    train = None  # every run
    if spec.get("train") == "extragalactic":
        train = [i for i in ids if abs(glat[i]) > GLAT_MIN]
    # exclusion circles from every run's target, whichever runs build the models
    regions = resolve_exclusion("auto", obs_table)
    if spec.get("joint"):
        return run_joint_variant(
            store,
            name,
            regions,
            glat,
            with_published=with_published,
            progress=progress,
            folds=folds,
        )
    make = dict(spec["make"])
    make.setdefault("model", "groups")
    passes = 0 if make.get("smooth") is False else spec.get("passes")
    if passes is not None:
        make["smooth"] = False  # smoothed here with the variant's passes
    result = make_models(
        store,
        Path(outdir) / "models" / safe,
        overwrite=overwrite,
        progress=progress,
        obs_ids=train,
        exclusion=regions,
        **make,
    )
    if passes:
        resmooth(result, passes)
    alignment = make.get("alignment", "RADEC")
    ours = OurModels(result, store, spec["per_run"], passes)
    predictions = {}
    for obs_id in sorted(ids):
        predictions[obs_id] = (
            lambda obs, i=obs_id: ours.cube(i),
            lambda obs, i=obs_id: ours.cube(i, obs, regions),
            obs_id in ours.group_of,
            int(ours.groups[ours.group_index(obs_id)].group_id),
        )
    return _predict_runs(
        store,
        name,
        regions,
        glat,
        predictions,
        result.time_convention,
        alignment,
        with_published=with_published,
    )


def _predict_runs(
    store, name, regions, glat, predictions, time_convention, alignment, *, with_published=True
):
    """Observed and predicted counts of every run; the per-run table and profiles.

    ``predictions[obs_id]`` is ``(in_sample, out_of_sample, in_model,
    group_id)``: the first two are cubes, or functions of the run's
    observation (in the models' alignment) giving its cube (None: no
    out-of-sample prediction).
    """
    obs_table = store.obs_table
    ids = sorted(predictions)
    zenith = dict(zip(np.asarray(obs_table["OBS_ID"]).tolist(), zenith_of(obs_table), strict=True))
    n_energy = common_energy_edges().size - 1
    n_rings = RADIAL_EDGES.size - 1
    keys = ("observed", "ours", "ours_loo", "published")
    rows, radial, spectra = [], {k: [] for k in keys}, {k: [] for k in keys}
    for obs_id in ids:
        row = obs_table[np.flatnonzero(np.asarray(obs_table["OBS_ID"]) == obs_id)[0]]
        threshold = energy_threshold(obs_table, obs_id) or ENERGY_MIN
        observation = store.observation(obs_id, fov_alignment="RADEC")
        geometry = run_geometry(observation, regions, threshold, alignment == "ALTAZ")
        time = float(observation.observation_time(time_convention).to_value(u.s))
        model_obs = observation
        if alignment != "RADEC":
            model_obs = store.observation(obs_id, fov_alignment=alignment)
        in_sample, out_of_sample, in_model, group_id = predictions[obs_id]
        cube = in_sample(model_obs) if callable(in_sample) else in_sample
        loo = out_of_sample(model_obs) if callable(out_of_sample) else out_of_sample
        counts = {"observed": geometry.observed, "ours": predict(cube, geometry, time)}
        counts["ours_loo"] = (
            predict(loo, geometry, time)
            if loo is not None
            else np.full_like(geometry.observed, np.nan)
        )
        counts["published"] = (
            predict(_published(store, obs_id), geometry, geometry.ontime)
            if with_published
            else np.full_like(geometry.observed, np.nan)
        )
        for key, c in counts.items():
            r = np.zeros(n_rings)
            np.add.at(r, geometry.ring, c.sum(axis=0))
            sp = np.zeros(n_energy)
            sp[geometry.energy_index] = c.sum(axis=1)
            radial[key].append(r)
            spectra[key].append(sp)
        total = {k: float(np.sum(c)) for k, c in counts.items()}
        rows.append(
            {
                "OBS_ID": obs_id,
                "OBJECT": str(row["OBJECT"]).strip() if "OBJECT" in obs_table.colnames else "",
                "ZEN_PNT": float(zenith[obs_id]),
                "GLAT_PNT": float(glat[obs_id]),
                "EXTRAGALACTIC": bool(abs(glat[obs_id]) > GLAT_MIN),
                "GROUP_ID": int(group_id),
                "IN_MODEL": bool(in_model),
                "E_THRESHOLD": geometry.threshold,
                "ONTIME": geometry.ontime,
                "MUONEFF": float(row["MUONEFF"]) if "MUONEFF" in obs_table.colnames else np.nan,
                "OBSERVED": total["observed"],
                "PREDICTED_OURS": total["ours"],
                "PREDICTED_OURS_LOO": total["ours_loo"],
                "PREDICTED_PUBLISHED": total["published"],
            }
        )
    table = Table(rows=rows)
    for col, unit in (
        ("ZEN_PNT", u.deg),
        ("GLAT_PNT", u.deg),
        ("E_THRESHOLD", u.TeV),
        ("ONTIME", u.s),
    ):
        table[col].unit = unit
    for key, col in (
        ("OURS", "PREDICTED_OURS"),
        ("OURS_LOO", "PREDICTED_OURS_LOO"),
        ("PUBLISHED", "PREDICTED_PUBLISHED"),
    ):
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"RATIO_{key}"] = table["OBSERVED"] / table[col]
    table["PREDICTED_OURS_LOO_EFF"] = efficiency_scaled_loo(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["RATIO_OURS_LOO_EFF"] = table["OBSERVED"] / table["PREDICTED_OURS_LOO_EFF"]
        table["RATIO_POISSON_ERR"] = np.sqrt(table["OBSERVED"]) / table["PREDICTED_OURS"]
    table.meta.update(
        VARIANT=name,
        MAX_OFFSET=MAX_OFFSET,
        PIXEL=PIXEL,
        GLAT_MIN=GLAT_MIN,
        ENERGY_STEP_DEX=ENERGY_STEP_DEX,
    )
    profiles = {
        "radial": {k: np.array(v) for k, v in radial.items()},
        "spectra": {k: np.array(v) for k, v in spectra.items()},
    }
    return table, profiles


def efficiency_scaled_loo(table):
    """Leave-one-out predictions times the run's optical-efficiency norm, itself left out.

    What ``--efficiency-norm MUONEFF`` does, validated without using a run's
    counts for its own prediction: for each run, ``A (MUONEFF / ref) ** index``
    is fitted (`fit_efficiency_scaling`) to the other runs' observed and
    in-sample predicted counts, and multiplies the run's leave-one-out
    prediction.
    """
    observed = np.asarray(table["OBSERVED"], float)
    predicted = np.where(
        np.asarray(table["IN_MODEL"], bool), np.asarray(table["PREDICTED_OURS"], float), np.nan
    )
    eff = np.asarray(table["MUONEFF"], float)
    out = np.full(len(table), np.nan)
    for i in range(len(table)):
        others = np.arange(len(table)) != i
        try:
            scale, index, ref = fit_efficiency_scaling(
                observed[others], predicted[others], eff[others]
            )
        except ValueError:  # too few runs with an efficiency
            continue
        out[i] = table["PREDICTED_OURS_LOO"][i] * scale * (eff[i] / ref) ** index
    return out


# ----------------------------------------------------------------------------
# summary numbers
def robust_std(values):
    """1.4826 x median absolute deviation (the std of a Gaussian), NaN-safe."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _after_muon_efficiency(ratio, muoneff):
    """Robust std of the ratio after removing a straight-line dependence on MUONEFF."""
    ok = np.isfinite(ratio) & np.isfinite(muoneff)
    if ok.sum() < 3:
        return float("nan")
    slope, intercept = np.polyfit(muoneff[ok], ratio[ok], 1)
    return robust_std(ratio[ok] - (slope * muoneff[ok] + intercept))


def summarize(table):
    """Median observed/predicted and run-to-run scatter, per model and sample.

    ROBUST_STD_MUONEFF is the robust scatter left after a straight-line fit of
    the ratio against the runs' optical (muon) efficiency: a diagnostic of
    how much of the scatter that one run property explains.
    """
    rows = []
    samples = {
        "all": np.ones(len(table), bool),
        "extragalactic": np.asarray(table["EXTRAGALACTIC"], bool),
    }
    for model in ("OURS", "OURS_LOO", "OURS_LOO_EFF", "PUBLISHED"):
        for sample, mask in samples.items():
            ratio = np.asarray(table[f"RATIO_{model}"], float)[mask]
            muoneff = np.asarray(table["MUONEFF"], float)[mask]
            after_muoneff = _after_muon_efficiency(ratio, muoneff)
            ratio = ratio[np.isfinite(ratio)]
            poisson = np.asarray(table["RATIO_POISSON_ERR"], float)[mask]
            rows.append(
                {
                    "MODEL": model.lower(),
                    "SAMPLE": sample,
                    "N_RUNS": int(ratio.size),
                    "MEDIAN_RATIO": float(np.median(ratio)) if ratio.size else float("nan"),
                    "ROBUST_STD": robust_std(ratio),
                    "STD": float(np.std(ratio)) if ratio.size else float("nan"),
                    "ROBUST_STD_MUONEFF": after_muoneff,
                    "POISSON": float(np.median(poisson)) if poisson.size else float("nan"),
                }
            )
    return Table(rows=rows)


# ----------------------------------------------------------------------------
# plots
def _sum(profiles, kind, key, mask):
    return np.nansum(profiles[kind][key][mask], axis=0)


def plot_ratio_per_run(table, filename):
    """Observed/predicted per run against zenith angle, ours and published."""
    import matplotlib.pyplot as plt

    fig, (ax, ax_hist) = plt.subplots(
        1, 2, figsize=(10, 4), width_ratios=(2, 1), layout="constrained"
    )
    eg = np.asarray(table["EXTRAGALACTIC"], bool)
    zen = np.asarray(table["ZEN_PNT"])
    styles = (
        ("RATIO_OURS_LOO", "bgcube (out of sample)", "C0", "o"),
        ("RATIO_PUBLISHED", "published (Mohrmann+2019)", "C3", "s"),
    )
    for col, label, color, marker in styles:
        ratio = np.asarray(table[col], float)
        ax.errorbar(
            zen[eg],
            ratio[eg],
            yerr=np.asarray(table["RATIO_POISSON_ERR"])[eg],
            fmt=marker,
            color=color,
            ms=4,
            label=f"{label}, |b| > {GLAT_MIN:g} deg",
        )
        ax.plot(
            zen[~eg],
            ratio[~eg],
            marker,
            mfc="none",
            color=color,
            ms=4,
            label=f"{label}, Galactic plane",
        )
        finite = ratio[np.isfinite(ratio)]
        ax_hist.hist(
            finite, bins=np.linspace(0.6, 1.4, 33), histtype="step", color=color, label=label
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(
        xlabel="Zenith angle [deg]",
        ylabel="Observed / predicted counts",
        title=f"H.E.S.S. DR1 runs: counts within {MAX_OFFSET:g} deg, above threshold",
    )
    ax.legend(fontsize=7)
    ax_hist.axvline(1.0, color="k", lw=0.8)
    ax_hist.set(xlabel="Observed / predicted", ylabel="Runs")
    ax_hist.legend(fontsize=7)
    fig.savefig(filename, dpi=90)
    plt.close(fig)


def _profile_figure(profiles, kind, table, x_edges, xlabel, filename, log=False):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2, 2, figsize=(10, 6), sharex=True, height_ratios=(2, 1), layout="constrained"
    )
    eg = np.asarray(table["EXTRAGALACTIC"], bool)
    x = np.sqrt(x_edges[1:] * x_edges[:-1]) if log else 0.5 * (x_edges[1:] + x_edges[:-1])
    for col, (mask, title) in enumerate(
        ((np.ones_like(eg), "all runs"), (eg, f"|b| > {GLAT_MIN:g} deg"))
    ):
        obs = _sum(profiles, kind, "observed", mask)
        top, bottom = axes[0, col], axes[1, col]
        top.errorbar(x, obs, yerr=np.sqrt(obs), fmt="ko", ms=3, label="observed")
        for key, label, color in (
            ("ours_loo", "bgcube (out of sample)", "C0"),
            ("ours", "bgcube (in-sample)", "C2"),
            ("published", "published", "C3"),
        ):
            pred = _sum(profiles, kind, key, mask)
            top.stairs(pred, x_edges, color=color, label=label)
            with np.errstate(divide="ignore", invalid="ignore"):
                bottom.plot(x, obs / pred, "o-", color=color, ms=3)
        top.set(title=f"{title} ({int(mask.sum())} runs)", ylabel="Counts")
        if log:
            top.set(xscale="log", yscale="log")
        bottom.axhline(1.0, color="k", lw=0.8)
        bottom.set(xlabel=xlabel, ylabel="Observed / predicted", ylim=(0.5, 1.5))
        top.legend(fontsize=7)
    fig.savefig(filename, dpi=90)
    plt.close(fig)


def plot_variants(variants, filename):
    """Median and robust scatter of observed/predicted per variant (out of sample, |b| > 10)."""
    import matplotlib.pyplot as plt

    rows = variants[
        (variants["SAMPLE"] == "extragalactic")
        & np.isin(variants["MODEL"], ["ours_loo", "published"])
    ]
    names = [str(v) for v in rows["VARIANT"]]
    y = np.arange(len(rows))
    fig, (ax_med, ax_std) = plt.subplots(
        1, 2, figsize=(10, 0.28 * len(rows) + 1.2), sharey=True, layout="constrained"
    )
    colors = ["C3" if m == "published" else "C0" for m in rows["MODEL"]]
    ax_med.barh(y, np.asarray(rows["MEDIAN_RATIO"]) - 1.0, left=1.0, color=colors)
    ax_med.axvline(1.0, color="k", lw=0.8)
    ax_med.set(
        yticks=y,
        yticklabels=names,
        xlabel="Median observed / predicted",
        title=f"out of sample, |b| > {GLAT_MIN:g} deg",
    )
    ax_std.barh(y, rows["ROBUST_STD"], color=colors)
    ax_std.plot(rows["ROBUST_STD_MUONEFF"], y, "k|", ms=8, label="after a linear MUONEFF term")
    ax_std.set(xlabel="Run-to-run robust std of the ratio")
    ax_std.legend(fontsize=7)
    ax_med.invert_yaxis()
    fig.savefig(filename, dpi=90)
    plt.close(fig)


def make_plots(table, profiles, outdir, overwrite=False):
    """Write the three figures; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    paths = [Path(outdir) / name for name in FIGURES]
    writers = (
        lambda p: plot_ratio_per_run(table, p),
        lambda p: _profile_figure(
            profiles, "radial", table, RADIAL_EDGES, "Offset from pointing [deg]", p
        ),
        lambda p: _profile_figure(
            profiles,
            "spectra",
            table,
            common_energy_edges(),
            "Reconstructed energy [TeV]",
            p,
            log=True,
        ),
    )
    for path, write in zip(paths, writers, strict=True):
        with atomic_output(path, overwrite=overwrite) as tmp:
            write(tmp)
    return paths


# ----------------------------------------------------------------------------
def _write_table(table, path, overwrite):
    with atomic_output(path, overwrite=overwrite) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)


def validate(
    outdir,
    obs_ids=None,
    *,
    variant=CHOSEN,
    variants=False,
    plots=True,
    overwrite=False,
    progress=False,
    folds=FOLDS,
):
    """Run the validation; write tables and figures into ``outdir``.

    Parameters
    ----------
    outdir : str or path
    obs_ids : sequence of int, optional
        Use only these runs (default: all 105).
    variant : str
        The variant reported in detail (a key of `VARIANTS`).
    variants : bool
        Also run every other variant and write ``validation_variants.ecsv``.
    plots : bool
        Write the PNG figures.
    overwrite : bool
        Replace existing outputs.
    progress : bool or None
        Progress bars (None: on a terminal only).
    folds : int
        Joint model: 0 for leave-one-out, else k-fold by run.

    Returns
    -------
    out : dict
        ``table`` (per run), ``summary``, ``variants`` (or None) and ``files``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    store = DataStore.from_dir(get_path("hess-dl3-dr1"))
    if obs_ids is not None:
        store = store.select(obs_ids=list(obs_ids))
    table, profiles = run_variant(
        store, outdir, variant, overwrite=overwrite, progress=progress, folds=folds
    )
    summary = summarize(table)
    files = [outdir / "validation_runs.ecsv", outdir / "validation_summary.ecsv"]
    _write_table(table, files[0], overwrite)
    _write_table(summary, files[1], overwrite)
    if plots:
        files += make_plots(table, profiles, outdir, overwrite)
    variant_table = None
    if variants:
        rows = []
        for name in VARIANTS:
            t = (
                table
                if name == variant
                else run_variant(
                    store,
                    outdir,
                    name,
                    overwrite=overwrite,
                    with_published=False,
                    progress=progress,
                    folds=folds,
                )[0]
            )
            for row in summarize(t):
                if row["MODEL"] != "published":
                    rows.append({"VARIANT": name, **{c: row[c] for c in row.colnames}})
        rows += [
            {"VARIANT": "published", **{c: r[c] for c in r.colnames}}
            for r in summary
            if r["MODEL"] == "published"
        ]
        variant_table = Table(rows=rows)
        files.append(outdir / "validation_variants.ecsv")
        _write_table(variant_table, files[-1], overwrite)
        if plots:
            files.append(outdir / "validation_variants.png")
            with atomic_output(files[-1], overwrite=overwrite) as tmp:
                plot_variants(variant_table, tmp)
    return {"table": table, "summary": summary, "variants": variant_table, "files": files}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--variant", default=CHOSEN, choices=list(VARIANTS))
    parser.add_argument("--variants", action="store_true", help="also compare every variant")
    parser.add_argument("--obs-ids", default=None, help="comma-separated OBS_IDs (default: all)")
    parser.add_argument(
        "--folds",
        type=int,
        default=FOLDS,
        help="joint model: 0 for leave-one-out (default), K for K-fold by run",
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.folds == 1 or args.folds < 0:
        parser.error(f"--folds must be 0 (leave-one-out) or at least 2, got {args.folds}")
    obs_ids = None if args.obs_ids is None else [int(v) for v in args.obs_ids.split(",")]
    out = validate(
        args.outdir,
        obs_ids,
        variant=args.variant,
        variants=args.variants,
        overwrite=args.overwrite,
        progress=None,
        folds=args.folds,
    )
    summary = out["summary"]
    for col in ("MEDIAN_RATIO", "ROBUST_STD", "STD", "ROBUST_STD_MUONEFF", "POISSON"):
        summary[col].format = ".3f"
    protocol = "leave-one-out" if not args.folds else f"{args.folds}-fold by run"
    print(f"variant: {args.variant} (joint model out of sample: {protocol})")
    print("\n".join(summary.pformat(max_width=-1)))
    if out["variants"] is not None:
        variants = out["variants"]
        for col in ("MEDIAN_RATIO", "ROBUST_STD", "STD", "ROBUST_STD_MUONEFF", "POISSON"):
            variants[col].format = ".3f"
        print("\n".join(variants.pformat(max_lines=-1, max_width=-1)))
    print("written:", *[str(p) for p in out["files"]], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())

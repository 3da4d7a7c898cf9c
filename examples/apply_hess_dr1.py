"""Build on one half of the H.E.S.S. DR1 runs, analyse the other half with Gammapy
================================================================================

An out-of-sample test of bgcube's models in a Gammapy 3D analysis.

Usage::

    python examples/apply_hess_dr1.py OUTDIR [--overwrite]

The data are found through ``bgcube.datasets.get_path('hess-dl3-dr1')``
(``$BGCUBE_DATA`` or ``../shared/data``). Steps:

1. The extragalactic runs of H.E.S.S. DL3 DR1 (``abs(GLAT_PNT) > 10`` deg), sorted
   by OBS_ID, are split alternately into a *build* half and an *apply* half.
2. ``bgcube make-models`` on the build half (``--obs-ids``; exclusion circles
   around the targets and known sources; one k5a smoothing pass), writing
   ``OUTDIR/models``.
3. ``bgcube apply-models`` writes the background of the apply half into
   ``OUTDIR/applied`` (group models interpolated in cos zenith; runs outside
   the zenith, muon-efficiency and threshold range of the build half are
   left out, ``--no-extrapolate``), a folder that Gammapy's
   ``DataStore.from_dir`` reads.
4. The PKS 2155-304 runs of the apply half are reduced with Gammapy
   (``MapDatasetMaker``, ``SafeMaskMaker`` offset < 2 deg and the runs'
   safe energy threshold from the effective area, ``FoVBackgroundMaker``
   scaling the background of each run outside a 0.4 deg exclusion circle
   around the blazar), once with bgcube's backgrounds and once with the
   published ones (the BKG HDUs of the DR1, Mohrmann et al. 2019).
5. For each, the Li & Ma significance map of the stacked data (correlation
   radius 0.1 deg, 0.5-10 TeV), whose distribution outside the exclusion
   region should be a standard normal where the background is right: its
   mean and width are printed and written to
   ``OUTDIR/apply_hess_dr1_summary.ecsv`` with the FoV background norms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bgcube.cli import main as bgcube
from bgcube.data import DataStore
from bgcube.datasets import get_path

TARGET = "PKS 2155-304"
TARGET_POSITION = SkyCoord(329.71694, -30.22559, unit="deg", frame="icrs")
EXCLUSION_RADIUS = 0.4 * u.deg
OFFSET_MAX = 2.0 * u.deg
ENERGY_EDGES = np.geomspace(0.5, 10, 9) * u.TeV
CORRELATION_RADIUS = 0.1 * u.deg


def split_runs(obs_table):
    """Extragalactic runs (abs(b) > 10 deg) sorted by OBS_ID: (build half, apply half)."""
    glat = u.Quantity(obs_table["GLAT_PNT"], u.deg).to_value(u.deg)
    ids = np.sort(np.asarray(obs_table["OBS_ID"], dtype=np.int64)[np.abs(glat) > 10])
    return ids[0::2].tolist(), ids[1::2].tolist()


def reduce_runs(store, obs_ids):
    """Gammapy 3D reduction of runs, stacked; returns (stacked dataset, exclusion mask, norms)."""
    from gammapy.datasets import MapDataset
    from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
    from gammapy.maps import MapAxis, WcsGeom
    from regions import CircleSkyRegion

    axis = MapAxis.from_energy_edges(ENERGY_EDGES, name="energy")
    geom = WcsGeom.create(
        skydir=TARGET_POSITION, width=5 * u.deg, binsz=0.02, frame="icrs", axes=[axis]
    )
    axis_true = MapAxis.from_energy_bounds(0.1, 30, nbin=20, unit="TeV", name="energy_true")
    exclusion = ~geom.to_image().region_mask([CircleSkyRegion(TARGET_POSITION, EXCLUSION_RADIUS)])
    stacked = MapDataset.create(geom, energy_axis_true=axis_true, name="stacked")
    maker = MapDatasetMaker(selection=["counts", "exposure", "background"])
    safe = SafeMaskMaker(methods=["offset-max", "aeff-default"], offset_max=OFFSET_MAX)
    fov = FoVBackgroundMaker(method="scale", exclusion_mask=exclusion)
    norms = []
    for obs in store.get_observations(obs_ids, required_irf=["aeff", "bkg"]):
        cutout = stacked.cutout(
            obs.get_pointing_icrs(obs.tmid),
            width=2 * OFFSET_MAX + 0.5 * u.deg,
            name=f"obs-{obs.obs_id}",
        )
        dataset = fov.run(safe.run(maker.run(cutout, obs), obs))
        norms.append(float(dataset.background_model.spectral_model.norm.value))
        stacked.stack(dataset)
    return stacked, exclusion, np.array(norms)


def significance_distribution(stacked, exclusion):
    """Mean and width of the Li & Ma significance outside the exclusion region."""
    from gammapy.estimators import ExcessMapEstimator

    estimator = ExcessMapEstimator(
        correlation_radius=CORRELATION_RADIUS,
        energy_edges=ENERGY_EDGES[[0, -1]],
        selection_optional=[],
    )
    maps = estimator.run(stacked)
    sqrt_ts = maps["sqrt_ts"].data[0]
    safe = stacked.mask_safe_image.data.reshape(sqrt_ts.shape)
    use = exclusion.data.reshape(sqrt_ts.shape) & np.isfinite(sqrt_ts) & safe
    values = sqrt_ts[use]
    return (
        float(np.mean(values)),
        float(np.std(values)),
        int(values.size),
        float(
            maps["sqrt_ts"].get_by_coord({"skycoord": TARGET_POSITION, "energy": ENERGY_EDGES[1]})[
                0
            ]
        ),
    )


def run(outdir, overwrite=False):
    """Run the whole example; returns the summary table."""
    indir = get_path("hess-dl3-dr1")
    outdir = Path(outdir)
    obs_table = DataStore.from_dir(indir).obs_table
    build, apply = split_runs(obs_table)
    extra = ["--overwrite"] if overwrite else []
    status = bgcube(
        [
            "make-models",
            str(indir),
            str(outdir / "models"),
            "--obs-ids",
            ",".join(map(str, build)),
            "--model",
            "groups",
            "--smooth-passes",
            "1",
            "--no-progress",
            *extra,
        ]
    )
    if status:
        raise SystemExit(status)
    status = bgcube(
        [
            "apply-models",
            str(outdir / "models"),
            str(indir),
            str(outdir / "applied"),
            "--obs-ids",
            ",".join(map(str, apply)),
            "--no-extrapolate",
            *extra,
        ]
    )
    if status:
        raise SystemExit(status)
    applied = DataStore.from_dir(outdir / "applied").obs_table
    objects = np.char.strip(np.asarray(applied["OBJECT"]).astype(str))
    runs = sorted(int(i) for i in applied["OBS_ID"][objects == TARGET])
    pks_apply = [
        int(i)
        for i, o in zip(obs_table["OBS_ID"], obs_table["OBJECT"], strict=True)
        if int(i) in apply and str(o).strip() == TARGET
    ]
    print(
        f"\n{len(build)} runs to build, {len(apply)} to apply to, {len(applied)} written; "
        f"{TARGET}: {len(runs)} of its {len(pks_apply)} runs in the apply half: {runs}"
    )

    from gammapy.data import DataStore as GammapyDataStore

    rows = []
    for label, folder in (("bgcube", outdir / "applied"), ("published", indir)):
        stacked, exclusion, norms = reduce_runs(GammapyDataStore.from_dir(folder), runs)
        mean, width, n_pix, peak = significance_distribution(stacked, exclusion)
        rows.append(
            (
                label,
                len(runs),
                float(np.mean(norms)),
                float(np.std(norms)),
                float(norms.min()),
                float(norms.max()),
                mean,
                width,
                n_pix,
                peak,
            )
        )
    table = Table(
        rows=rows,
        names=(
            "BACKGROUND",
            "N_RUNS",
            "NORM_MEAN",
            "NORM_STD",
            "NORM_MIN",
            "NORM_MAX",
            "SIG_MEAN",
            "SIG_WIDTH",
            "N_PIXELS",
            "SIG_TARGET",
        ),
    )
    for name in table.colnames[2:]:
        if table[name].dtype.kind == "f":
            table[name].format = ".3f"
    table.meta.update(BUILD_RUNS=len(build), APPLY_RUNS=len(apply), WRITTEN=len(applied))
    table.write(outdir / "apply_hess_dr1_summary.ecsv", overwrite=True)
    print(
        "\nFoV background norms and significance outside the exclusion region "
        f"({TARGET} runs of the apply half):"
    )
    print("\n".join(table.pformat(max_width=-1)))
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    run(args.outdir, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())

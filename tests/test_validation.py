"""The H.E.S.S. DR1 validation script (examples/validate_hess_dr1.py) on a few runs."""

import importlib.util
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from bgcube import FOVCube
from bgcube.data import DataStore, ExclusionRegions

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "validate_hess_dr1.py"
#: Crab and PKS 2155-304 runs: two zenith groups, a Galactic and a high-latitude field.
RUNS = [23523, 23526, 23559, 33789, 33790, 33791, 33792]


@pytest.fixture(scope="module")
def validation():
    spec = importlib.util.spec_from_file_location("validate_hess_dr1", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def store(shared_data):
    return DataStore.from_dir(shared_data / "hess-dl3-dr1")


def test_robust_std_of_a_gaussian(validation):
    values = np.random.default_rng(0).normal(1.0, 0.1, 20000)
    assert validation.robust_std(values) == pytest.approx(0.1, rel=0.03)
    assert validation.robust_std(np.append(values, [50.0, np.nan])) == pytest.approx(0.1, rel=0.03)
    assert np.isnan(validation.robust_std([]))


def test_prediction_of_a_flat_rate_is_rate_times_volume_time_and_kept_fraction(validation, store):
    obs_id = 33790
    observation = store.observation(obs_id, fov_alignment="RADEC")
    circle = ExclusionRegions([observation.ra_pnt], [observation.dec_pnt + 0.5], [0.4])
    geometry = validation.run_geometry(observation, circle, threshold=0.5)
    assert geometry.energy_edges[0] == pytest.approx(0.5)
    fov = np.linspace(-3, 3, 13) * u.deg
    energy = np.geomspace(0.1, 100, 7) * u.TeV
    rate = 2e-6 * u.Unit("1 / (MeV s sr)")
    cube = FOVCube(
        fov, fov, energy, data=np.full((6, 12, 12), rate.value) * rate.unit, scheme="bg_cube"
    )
    counts = validation.predict(cube, geometry, time=1000.0)
    widths_mev = np.diff(geometry.energy_edges) * 1e6
    expected = rate.value * widths_mev[:, None] * geometry.weight[None, :] * 1000.0
    np.testing.assert_allclose(counts, expected, rtol=1e-9)
    # the circle (0.4 deg, fully inside 2 deg) removes its area from the weights
    pixel_sr = np.radians(validation.PIXEL) ** 2
    lost = geometry.detx.size * pixel_sr - geometry.weight.sum()
    circle_sr = 2 * np.pi * (1 - np.cos(np.radians(0.4)))
    assert lost == pytest.approx(circle_sr, rel=0.02)
    # observed events: none inside the circle, none below the threshold
    assert geometry.observed.sum() > 0
    assert geometry.observed.shape == counts.shape


def test_validation_on_a_few_runs_writes_table_summary_and_figures(
    validation, shared_data, tmp_path
):
    out = validation.validate(tmp_path, RUNS, variant="default")
    table = out["table"]
    assert sorted(table["OBS_ID"]) == RUNS
    for name in (
        "OBSERVED",
        "PREDICTED_OURS",
        "PREDICTED_PUBLISHED",
        "RATIO_OURS",
        "RATIO_PUBLISHED",
        "ZEN_PNT",
        "OBJECT",
        "EXTRAGALACTIC",
        "RATIO_OURS_LOO_EFF",
    ):
        assert name in table.colnames
    assert np.all(table["OBSERVED"] > 500)
    # the efficiency norm exists wherever the leave-one-out model does
    loo, eff = np.asarray(table["RATIO_OURS_LOO"]), np.asarray(table["RATIO_OURS_LOO_EFF"])
    assert np.array_equal(np.isfinite(loo), np.isfinite(eff)) and np.isfinite(eff).sum() >= 3
    for col in ("RATIO_OURS", "RATIO_PUBLISHED"):
        ratio = np.asarray(table[col])
        assert np.all(np.isfinite(ratio)) and np.all((ratio > 0.3) & (ratio < 3))
    eg = dict(zip(table["OBS_ID"], table["EXTRAGALACTIC"], strict=True))
    assert not eg[23523] and eg[33790]  # Crab |b| ~ 5 deg; PKS 2155-304 |b| ~ 52 deg
    summary = out["summary"]
    assert set(summary["MODEL"]) == {"ours", "ours_loo", "ours_loo_eff", "published"}
    assert set(summary["SAMPLE"]) == {"all", "extragalactic"}
    written = Table.read(tmp_path / "validation_runs.ecsv")
    assert len(written) == len(RUNS)
    for name in validation.FIGURES:
        path = tmp_path / name
        assert path in out["files"]
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 300_000


def test_joint_variant_predicts_every_run_out_of_sample(validation, shared_data, tmp_path):
    """The default variant: the joint model, leave-one-out, on the PKS 2155-304 night."""
    store = DataStore.from_dir(shared_data / "hess-dl3-dr1")
    runs = [i for i in store.obs_ids.tolist() if 33787 <= i <= 33801]  # one night, 15 runs
    out = validation.validate(tmp_path, runs, plots=False)
    table = out["table"]
    assert out["table"].meta["VARIANT"] == validation.CHOSEN == "joint"
    assert sorted(table["OBS_ID"]) == runs
    for col in ("RATIO_OURS", "RATIO_OURS_LOO"):
        ratio = np.asarray(table[col])
        assert np.all(np.isfinite(ratio)) and np.all((ratio > 0.7) & (ratio < 1.4)), col
    # out of sample is not in-sample: the two predictions differ for every run
    assert np.all(np.asarray(table["PREDICTED_OURS"]) != np.asarray(table["PREDICTED_OURS_LOO"]))

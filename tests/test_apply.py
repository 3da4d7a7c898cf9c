"""apply-models: models of one set of runs written as the background of others, for Gammapy."""

import shutil

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table
from numpy.testing import assert_allclose

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import (
    BgcubeError,
    ConditionError,
    DataNotFoundError,
    ObservationError,
    OutputExistsError,
)
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name
from bgcube.make.model_source import GroupModels, Validity, load_model_source, register_loader
from bgcube.simulate import make_test_background, make_test_dataset

RATE = u.Unit("1 / (MeV s sr)")
X = np.array([-1.7, -0.6, 0.0, 0.45, 1.3]) * u.deg
Y = np.array([0.3, -1.2, 0.8, 0.05, -0.4]) * u.deg
E = np.array([0.4, 1.1, 3.0, 9.0, 30.0]) * u.TeV


# ---------------------------------------------------------------- H.E.S.S. DR1 acceptance
@pytest.fixture(scope="module")
def dr1_split(shared_data, tmp_path_factory):
    indir = shared_data / "hess-dl3-dr1"
    ids = DataStore.from_dir(indir).obs_ids.tolist()
    even = [i for i in ids if i % 2 == 0]
    odd = [i for i in ids if i % 2 == 1]
    root = tmp_path_factory.mktemp("dr1_apply")
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(indir),
                str(root / "A"),
                "--obs-ids",
                ",".join(map(str, even)),
                "--no-progress",
                "--smooth-passes",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "apply-models",
                str(root / "A"),
                str(indir),
                str(root / "B"),
                "--obs-ids",
                ",".join(map(str, odd)),
                "--no-extrapolate",
            ]
        )
        == 0
    )
    return indir, root, even, odd


@pytest.mark.gammapy
def test_dr1_even_model_applied_to_odd_runs_through_gammapy(dr1_split):
    gdata = pytest.importorskip("gammapy.data")
    indir, root, even, odd = dr1_split
    source = load_model_source(root / "A")
    assert isinstance(source, GroupModels)
    written = Table.read(root / "B" / "obs-index.fits.gz")
    applied = sorted(int(i) for i in written["OBS_ID"])
    assert set(applied) <= set(odd) and len(applied) >= len(odd) // 2
    store_in = DataStore.from_dir(indir)
    rows = {int(r["OBS_ID"]): r for r in store_in.obs_table}
    for obs_id in set(odd) - set(applied):  # left out: outside the conditions of the even runs
        assert source.validity.reasons(rows[obs_id])
    store = gdata.DataStore.from_dir(root / "B")
    assert sorted(store.obs_table["OBS_ID"].tolist()) == applied
    for obs_id in applied:
        obs = store.obs(obs_id)
        ours = source.background(rows[obs_id]).evaluate(detx=X, dety=Y, energy=E)
        # a SASH run: Gammapy reads fov_lon with REVERSE_LON_RADEC, i.e. -DETX of bgcube's model
        assert obs.bkg.fov_alignment.value == "REVERSE_LON_RADEC"
        theirs = obs.bkg.evaluate(fov_lon=-X, fov_lat=Y, energy=E)
        assert_allclose(theirs.to_value(RATE), ours.to_value(RATE), rtol=1e-10)
        assert len(obs.events.table) > 0 and len(obs.gti.table) > 0
        assert obs.aeff is not None and obs.edisp is not None and obs.psf is not None
    header = Table.read(root / "B" / "hdu-index.fits.gz").meta
    assert header["SELIDS"].split(",")[:2] == [str(i) for i in odd[:2]]
    assert header["BGPATHS"] == "relative"


def test_dr1_runs_outside_the_conditions_are_left_out_or_extrapolated(dr1_split, tmp_path):
    indir, root, even, odd = dr1_split
    source = load_model_source(root / "A")
    store = DataStore.from_dir(indir)
    outside = [int(r["OBS_ID"]) for r in store.obs_table if source.validity.reasons(r)]
    assert outside  # DR1 has runs outside the conditions of the even runs
    with pytest.raises(
        ObservationError,
        match=rf"OBS_ID {outside[0]}: .*outside the model's range.*without --no-extrapolate .* written, flagged BKG_EXTR = T",
    ):
        apply_models(root / "A", indir, tmp_path / "x", obs_ids=outside[:2], extrapolate=False)
    assert not (tmp_path / "x" / "hdu-index.fits.gz").exists()
    result = apply_models(root / "A", indir, tmp_path / "y", obs_ids=outside[:2])  # the default
    assert result.applied == result.extrapolated == sorted(outside[:2])
    assert set(result.outside_reasons) == set(outside[:2]) and not result.outside
    assert FOVCube.read(tmp_path / "y" / BKG_SUBDIR / bkg_file_name(outside[0])).meta["BKG_EXTR"]


# ---------------------------------------------------------------- simulated data
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        8 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=8,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=4,
    )
    root = tmp_path_factory.mktemp("sim_apply")
    ds = make_test_dataset(
        root / "data" / "ds",
        n_obs=8,
        random_state=4,
        background=background,
        alt_range=Angle([50, 80], "deg"),
        ontime=300 * u.s,
    )
    ids = [int(i) for i in ds.obs_ids]
    make_models(
        ds.path,
        root / "models",
        exclusion="none",
        progress=False,
        obs_ids=ids[:5],
        zenith_edges=(0, 25, 50),
        smooth=1,
        model="groups",
    )
    return ds.path, root / "models", ids


def _open_everything(outdir, ids, source, rows):
    gdata = pytest.importorskip("gammapy.data")
    store = gdata.DataStore.from_dir(outdir)
    assert sorted(store.obs_table["OBS_ID"].tolist()) == sorted(ids)
    for obs_id in ids:
        obs = store.obs(obs_id, required_irf=[])
        assert len(obs.events.table) > 0
        theirs = obs.bkg.evaluate(fov_lon=X, fov_lat=Y, energy=E).to_value(RATE)
        ours = source.background(rows[obs_id]).evaluate(detx=X, dety=Y, energy=E)
        assert_allclose(theirs, ours.to_value(RATE), rtol=1e-10)


@pytest.mark.gammapy
@pytest.mark.parametrize("rule", ["relative", "absolute", "copy", "link"])
def test_outputs_survive_the_moves_their_rule_promises(sim, tmp_path, rule):
    indir, models, ids = sim
    work = tmp_path / "work"
    shutil.copytree(indir, work / "data" / "ds")
    source = load_model_source(models)
    rows = {int(r["OBS_ID"]): r for r in DataStore.from_dir(indir).obs_table}
    result = apply_models(
        models,
        work / "data" / "ds",
        work / "out" / "B",
        obs_ids=ids[5:],
        input_paths=rule,
        extrapolate=True,
    )
    assert result.applied == sorted(ids[5:])
    _open_everything(work / "out" / "B", ids[5:], source, rows)
    if rule in ("absolute", "link", "copy"):
        # OUTDIR moved alone, the data stay
        shutil.move(work / "out" / "B", tmp_path / "elsewhere")
        _open_everything(tmp_path / "elsewhere", ids[5:], source, rows)
    if rule in ("relative", "copy"):
        # OUTDIR moved together with the data folder, in the same relative place
        moved = tmp_path / "other_machine"
        shutil.move(work, moved)
        outdir = moved / "out" / "B" if rule == "relative" else tmp_path / "elsewhere"
        _open_everything(outdir, ids[5:], source, rows)
        assert not work.exists()  # nothing is read from the old place
    if rule == "copy":  # self-contained: the data may go
        shutil.rmtree(tmp_path / "other_machine")
        _open_everything(tmp_path / "elsewhere", ids[5:], source, rows)


def test_relative_paths_break_when_the_output_moves_alone(sim, tmp_path):
    """The documented limit of the default rule (use absolute, link or copy for that move)."""
    indir, models, ids = sim
    apply_models(models, indir, tmp_path / "B", obs_ids=ids[5:6], extrapolate=True)
    shutil.move(tmp_path / "B", tmp_path / "x" / "y" / "B")
    store = DataStore.from_dir(tmp_path / "x" / "y" / "B")
    with pytest.raises(ObservationError, match="does not exist"):
        store.observation(ids[5])


def test_apply_refuses_unsafe_or_empty_requests(sim, tmp_path):
    indir, models, ids = sim
    with pytest.raises(BgcubeError, match="inside the input data folder"):
        apply_models(models, indir, indir / "out")
    with pytest.raises(BgcubeError, match="inside the model folder"):
        apply_models(models, indir, models / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="none of the model files"):
        apply_models(tmp_path / "empty", indir, tmp_path / "out")
    with pytest.raises(ObservationError, match="no run selected"):
        apply_models(models, indir, tmp_path / "out", select="ZEN_PNT > 89")
    apply_models(models, indir, tmp_path / "B", obs_ids=ids[5:6], extrapolate=True)
    with pytest.raises(OutputExistsError):
        apply_models(models, indir, tmp_path / "B", obs_ids=ids[5:6], extrapolate=True)
    apply_models(models, indir, tmp_path / "B", obs_ids=ids[5:6], extrapolate=True, overwrite=True)


def test_group_models_check_a_run_has_a_zenith_angle(sim):
    from bgcube.errors import FileFormatError

    indir, models, ids = sim
    source = load_model_source(models)
    assert source.check({"ZEN_PNT": 30.0}) is None
    assert source.check({"ALT_PNT": 60.0}) is None
    with pytest.raises(FileFormatError, match="no ZEN_PNT or ALT_PNT"):
        source.check({"OBS_ID": 1})


def test_a_new_kind_of_model_plugs_in(sim, tmp_path, monkeypatch):
    indir, models, ids = sim
    flat = load_model_source(models).cubes[0]

    class Flat:
        validity = Validity({"ZEN_PNT": (0.0, 90.0)})

        def background(self, row):
            return flat.copy(data=np.ones(flat.shape) * 1e-9)

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "bg_flat_model.txt").write_text("flat")
    import bgcube.make.model_source as ms

    monkeypatch.setattr(ms, "LOADERS", list(ms.LOADERS))
    register_loader("bg_flat_model.txt", lambda folder: Flat())
    result = apply_models(tmp_path / "m", indir, tmp_path / "B", obs_ids=ids[:2])
    written = FOVCube.read(tmp_path / "B" / BKG_SUBDIR / bkg_file_name(ids[0]))
    assert_allclose(np.asarray(written.data), 1e-9) and result.applied == sorted(ids[:2])


@pytest.mark.parametrize("with_check", [True, False], ids=["check", "no check"])
def test_runs_are_written_one_cube_at_a_time(sim, tmp_path, monkeypatch, with_check):
    """An archive's runs are never held all at once: each run's cube is made just before
    it is written; a run the model cannot take is found first (by ``check``, where the
    source has one, without making its cube) and nothing of it is written."""
    import gc
    import weakref

    indir, models, ids = sim
    flat = load_model_source(models).cubes[0]
    made, alive, most = [], weakref.WeakSet(), [0]

    class Flat:
        validity = Validity({"ZEN_PNT": (0.0, 90.0)})

        def background(self, row):
            if int(row["OBS_ID"]) == ids[1]:
                raise ConditionError("no MUONEFF for this run")
            gc.collect()
            cube = flat.copy(data=np.full(flat.shape, 1e-9 * int(row["OBS_ID"])))
            made.append(int(row["OBS_ID"]))
            alive.add(cube)
            most[0] = max(most[0], len(alive))
            return cube

    if with_check:
        Flat.check = lambda self, row: (
            Flat.background(self, row) if int(row["OBS_ID"]) == ids[1] else None
        )
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "bg_flat_model.txt").write_text("flat")
    import bgcube.make.model_source as ms

    monkeypatch.setattr(ms, "LOADERS", list(ms.LOADERS))
    register_loader("bg_flat_model.txt", lambda folder: Flat())
    result = apply_models(tmp_path / "m", indir, tmp_path / "B", obs_ids=ids)
    applied = [i for i in sorted(ids) if i != ids[1]]
    assert result.applied == applied
    assert [i for i, _ in result.left_out] == [ids[1]]
    assert made == (applied if with_check else applied + applied)  # without check: twice
    assert most[0] <= 2  # the cube being made and at most the one before it
    assert not (tmp_path / "B" / BKG_SUBDIR / bkg_file_name(ids[1])).exists()
    for obs_id in applied:
        written = FOVCube.read(tmp_path / "B" / BKG_SUBDIR / bkg_file_name(obs_id))
        assert_allclose(np.asarray(written.data).max(), 1e-9 * obs_id, rtol=1e-12)


def test_command_line(sim, tmp_path, capsys):
    indir, models, ids = sim
    status = main(
        [
            "apply-models",
            str(models),
            str(indir),
            str(tmp_path / "B"),
            "--exclude-obs-ids",
            ",".join(map(str, ids[:5])),
            "--copy-events",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0
    written = Table.read(tmp_path / "B" / "hdu-index.fits.gz")
    assert written.meta["BGPATHS"] == "copy"
    assert all(d in ("bkg",) or d.startswith("data") for d in written["FILE_DIR"])
    n_applied = len(Table.read(tmp_path / "B" / "obs-index.fits.gz"))
    assert f"{n_applied} run(s) written" in out
    assert n_applied + err.count("left out OBS_ID") == 3
    status = main(
        ["apply-models", str(models), str(indir), str(tmp_path / "C"), "--obs-ids", "9999"]
    )
    assert status == 1 and "9999" in capsys.readouterr().err


@pytest.mark.gammapy
@pytest.mark.parametrize("rule", ["absolute", "copy"])
def test_make_models_per_run_output_moves_alone(sim, tmp_path, rule):
    gdata = pytest.importorskip("gammapy.data")
    indir, models, ids = sim
    status = main(
        [
            "make-models",
            "--model",
            "groups",
            str(indir),
            str(tmp_path / "M"),
            "--per-observation",
            "group",
            "--exclusion",
            "none",
            "--no-progress",
            "--obs-ids",
            ",".join(map(str, ids[:3])),
            "--input-paths",
            rule,
        ]
    )
    assert status == 0
    shutil.move(tmp_path / "M", tmp_path / "moved")
    store = gdata.DataStore.from_dir(tmp_path / "moved")
    assert sorted(store.obs_table["OBS_ID"].tolist()) == sorted(ids[:3])
    for obs_id in ids[:3]:
        obs = store.obs(obs_id, required_irf=[])
        assert len(obs.events.table) > 0 and obs.bkg is not None
    assert Table.read(tmp_path / "moved" / "hdu-index.fits.gz").meta["BGPATHS"] == rule


def test_runs_outside_the_conditions_among_others_are_named_with_the_option(
    dr1_split, tmp_path, capsys
):
    """Some runs outside the model's range, others inside: by default all are written, the
    command names the extrapolated ones; with --no-extrapolate those are left out, and the
    command says how many and what the default does."""
    indir, root, even, odd = dr1_split
    source = load_model_source(root / "A")
    rows = DataStore.from_dir(indir).obs_table
    outside = [int(r["OBS_ID"]) for r in rows if source.validity.reasons(r)]
    inside = [int(r["OBS_ID"]) for r in rows if not source.validity.reasons(r)]
    chosen = [outside[0], inside[0]]
    result = apply_models(root / "A", indir, tmp_path / "api", obs_ids=chosen, extrapolate=False)
    assert result.applied == [inside[0]] and result.outside == [outside[0]]
    ids = ",".join(str(i) for i in chosen)
    argv = ["apply-models", str(root / "A"), str(indir), str(tmp_path / "cli"), "--obs-ids", ids]
    assert main([*argv, "--no-progress", "--no-extrapolate"]) == 0
    err = capsys.readouterr().err
    assert "note: 1 run(s) left out for conditions outside the model's range" in err
    assert "without it they are written, flagged BKG_EXTR = T" in err
    assert main([*argv, "--no-progress", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert f"extrapolated OBS_ID {outside[0]}: " in err and "left out" not in err
    assert "note: 1 run(s) written with the model extrapolated" in err

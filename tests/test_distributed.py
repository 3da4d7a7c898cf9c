"""make-models on Dask: equal to the serial build bit for bit, faults, resume.

One dask.distributed LocalCluster (2 worker processes), started by
`bgcube.make.distributed.dask_client` as ``make_models(workers=2, model="groups")`` does, serves
the module.
"""

import shutil

import numpy as np
import pytest
from _build_helpers import ScriptedStore, assert_same_models
from astropy.io import fits

from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import DroppedEventsWarning, ObservationError
from bgcube.make import make_models
from bgcube.make.checkpoint import CHECKPOINT_DIR
from bgcube.make.distributed import dask_client
from bgcube.simulate import make_test_dataset

distributed = pytest.importorskip("distributed", reason="the Dask tests need dask.distributed")

N_OBS = 8


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        yield client
    assert client.status == "closed"


def test_dask_client_arguments(client):
    with dask_client(scheduler=client) as same:
        assert same is client
    assert client.status == "running"  # a client given is left open
    for kwargs in ({}, {"scheduler": "tcp://localhost:1", "workers": 1}, {"workers": 0}):
        with pytest.raises(ValueError), dask_client(**kwargs):
            pass


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("dask"), n_obs=N_OBS, random_state=5)


@pytest.fixture(scope="module")
def serial(dataset, tmp_path_factory):
    """The serial build (exclusion 'auto': time cubes are sums of time x kept fraction)."""
    result = make_models(
        dataset.path, tmp_path_factory.mktemp("serial"), progress=False, model="groups"
    )
    assert len(result.groups) > 1 and result.failed == []
    assert sum(g.n_excluded for g in result.groups) > 0
    time = np.asarray(result.groups[0].model.livetime_cube.data)
    assert len(np.unique(time[0])) > 2  # excluded pixels have less time: the sums are not trivial
    return result


def test_dask_build_equals_the_serial_build(client, dataset, serial, tmp_path):
    result = make_models(dataset.path, tmp_path, progress=False, scheduler=client, model="groups")
    assert_same_models(result, serial)
    assert not (tmp_path / CHECKPOINT_DIR).exists()
    # the files too
    for g in serial.groups:
        name = f"bg_cube_model_group{g.group_id}_table.fits.gz"
        assert (tmp_path / name).is_file()


def test_a_task_failing_once_is_retried_and_the_result_stays_exact(
    client, dataset, serial, tmp_path
):
    store = ScriptedStore(
        DataStore.from_dir(dataset.path),
        flaky_obs_id=3,
        flaky="raise",
        marker=tmp_path / "failed-once",
    )
    result = make_models(
        store, tmp_path / "out", progress=False, scheduler=client.scheduler.address, model="groups"
    )  # by address: a client of our own
    assert (tmp_path / "failed-once").exists()
    assert_same_models(result, serial)


def test_a_worker_lost_mid_build_neither_corrupts_nor_double_counts(
    client, dataset, serial, tmp_path
):
    store = ScriptedStore(
        DataStore.from_dir(dataset.path),
        flaky_obs_id=5,
        flaky="exit",
        marker=tmp_path / "worker-died",
    )
    result = make_models(store, tmp_path / "out", progress=False, scheduler=client, model="groups")
    assert (tmp_path / "worker-died").exists()
    assert_same_models(result, serial)
    client.wait_for_workers(2, timeout=60)


@pytest.fixture(scope="module")
def broken(dataset, tmp_path_factory):
    """A copy of the data set whose first run's event file is not a FITS file."""
    path = tmp_path_factory.mktemp("broken") / "data"
    shutil.copytree(dataset.path, path)
    store = DataStore.from_dir(dataset.path)
    events_file = store.hdu_location(int(store.obs_ids[0]), "events")[0]
    (path / events_file.relative_to(dataset.path)).write_bytes(b"not a FITS file")
    return path, int(store.obs_ids[0]), events_file.name


def test_an_unreadable_run_is_reported_and_left_out(client, broken, tmp_path):
    path, obs_id, file_name = broken
    result = make_models(path, tmp_path / "dask", progress=False, scheduler=client, model="groups")
    assert [i for i, _ in result.failed] == [obs_id]
    assert file_name in result.failed[0][1]
    assert all(obs_id not in g.obs_ids for g in result.groups)
    assert_same_models(
        result, make_models(path, tmp_path / "serial", progress=False, model="groups")
    )
    with pytest.raises(ObservationError, match=f"OBS_ID {obs_id}"):
        make_models(
            path,
            tmp_path / "fail-fast",
            progress=False,
            scheduler=client,
            fail_fast=True,
            model="groups",
        )


def test_warnings_on_the_workers_reach_the_user(client, dataset, tmp_path):
    path = tmp_path / "data"
    shutil.copytree(dataset.path, path)
    store = DataStore.from_dir(path)
    events_file, hdu = store.hdu_location(int(store.obs_ids[1]), "events")
    with fits.open(events_file, mode="update") as hdus:
        hdus[hdu].data["ENERGY"][:3] = np.nan
    with pytest.warns(DroppedEventsWarning, match="dropped 3 of") as record:
        make_models(path, tmp_path / "out", progress=False, scheduler=client, model="groups")
    assert [w.message.n_dropped for w in record] == [3]


def test_a_serial_build_interrupted_resumes_on_dask(client, dataset, serial, tmp_path):
    first = ScriptedStore(DataStore.from_dir(dataset.path), interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        make_models(first, tmp_path, progress=False, model="groups")
    result = make_models(
        dataset.path, tmp_path, progress=False, scheduler=client, resume=True, model="groups"
    )
    assert sorted(result.reused) == sorted(first.calls)
    assert_same_models(result, serial)


def test_a_serial_build_of_a_relative_indir_resumes_on_dask(
    client, dataset, serial, tmp_path, monkeypatch
):
    """The workers open the files by absolute paths: the saved runs are still reused."""
    monkeypatch.chdir(dataset.path.parent)
    first = ScriptedStore(DataStore.from_dir(dataset.path.name), interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        make_models(first, tmp_path, progress=False, model="groups")
    result = make_models(
        dataset.path.name, tmp_path, progress=False, scheduler=client, resume=True, model="groups"
    )
    assert sorted(result.reused) == sorted(first.calls)
    assert not any("recomputed" in m for m in result.messages)
    assert_same_models(result, serial)


def test_command_line_with_a_scheduler(client, dataset, tmp_path, capsys):
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(tmp_path),
                "--no-progress",
                "--exclusion",
                "none",
                "--scheduler",
                client.scheduler.address,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "GROUP_ID" in out and f"{N_OBS} observation(s)" in out
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(tmp_path),
                "--workers",
                "1",
                "--scheduler",
                "tcp://localhost:1",
            ]
        )
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            ["make-models", "--model", "groups", str(dataset.path), str(tmp_path), "--workers", "0"]
        )
    assert "positive integer" in capsys.readouterr().err


def test_joint_run_cubes_on_dask_equal_the_serial_ones(client, dataset):
    """The joint build's per-run cubes: one run at a time into the scratch file, on Dask too."""
    from bgcube.fit.joint import JointModelSpec
    from bgcube.make.joint import read_run_cubes, run_tasks
    from bgcube.make.pipeline import resolve_exclusion

    store = DataStore.from_dir(dataset.path)
    spec = JointModelSpec(energy_step_dex=0.1)
    regions = resolve_exclusion("auto", store.obs_table)
    tasks = run_tasks(store, store.obs_ids, spec, regions)
    serial = read_run_cubes(tasks, spec, progress=False)
    on_dask = read_run_cubes(tasks, spec, progress=False, scheduler=client)
    assert serial.obs_ids == on_dask.obs_ids == sorted(int(i) for i in store.obs_ids)
    np.testing.assert_array_equal(np.asarray(on_dask.counts), np.asarray(serial.counts))
    np.testing.assert_array_equal(on_dask.exposure, serial.exposure)
    assert serial.counts.sum() > 0


def test_the_effective_areas_read_with_the_runs_come_back_from_dask(client, tmp_path):
    """Each task reads its run's effective area with the events; Dask returns them as a
    serial read does, and as they are read on their own."""
    from _irf_helpers import with_aeff_in_event_files

    from bgcube.data.irf import with_effective_area
    from bgcube.fit.joint import JointModelSpec
    from bgcube.make.joint import read_run_cubes, run_tasks
    from bgcube.make.pipeline import resolve_exclusion

    simulated = make_test_dataset(tmp_path / "sim", n_obs=4, random_state=9)
    store = DataStore.from_dir(with_aeff_in_event_files(simulated.path, tmp_path / "aeff"))
    spec = JointModelSpec(energy_step_dex=0.1)
    tasks = run_tasks(
        store, store.obs_ids, spec, resolve_exclusion("none", store.obs_table), effective_area=True
    )
    serial = read_run_cubes(tasks, spec, progress=False)
    on_dask = read_run_cubes(tasks, spec, progress=False, scheduler=client)
    expected = with_effective_area(store, store.obs_table)
    alone = dict(
        zip(store.obs_ids.tolist(), np.asarray(expected["AEFF_1TEV"]).tolist(), strict=True)
    )
    assert on_dask.areas == serial.areas == alone
    np.testing.assert_array_equal(np.asarray(on_dask.counts), np.asarray(serial.counts))


def test_a_scheduler_nobody_answers_is_one_line_naming_the_option(monkeypatch, tmp_path, capsys):
    """No scheduler at the address: an error naming the address and --scheduler, not dask's."""
    import bgcube.make.distributed as module

    monkeypatch.setattr(module, "CONNECT_TIMEOUT", 2)
    with pytest.raises(module.BgcubeError, match=r"cannot reach the Dask scheduler 'tcp://127"):
        with dask_client("tcp://127.0.0.1:1"):
            pass
    indir = tmp_path / "data"
    make_test_dataset(indir, n_obs=2, random_state=0)
    argv = ["make-models", str(indir), str(tmp_path / "out"), "--model", "groups"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bgcube make-models: error: cannot reach the Dask scheduler")
    assert "--scheduler" in err and len(err.splitlines()) == 1

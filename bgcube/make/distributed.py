"""Dask execution of the make-models build: one task per run, a tree of additions per group.

`compute_on_dask` submits one `~bgcube.make.partial.compute_partial` task
per run (the task reads the run's files on the worker) and, per group, the
additions of the fixed binary tree of `~bgcube.make.partial.PairwiseSum`
over the runs in ascending OBS_ID, so that the sums equal the serial
build's bit for bit. The driver receives each run's result as it finishes
(to save it in the checkpoint, count failures and show progress) and the
group sums at the end; rates, smoothing and writing stay on the driver.

Faults:

* a run that cannot be read comes back as a failure record (OBS_ID,
  reason), is left out and reported; with ``fail_fast`` the build stops and
  its outstanding tasks are cancelled;
* a task that raises anything else (a flaky file system) is retried
  ``retries`` times; a worker lost mid-build has its tasks and results
  recomputed by the scheduler. Tasks are pure and keyed by OBS_ID, and the
  graph of additions is fixed before anything runs, so nothing is counted
  twice or lost;
* warnings a task emits (e.g. events with NaN coordinates dropped) are
  emitted again on the driver, as in a serial build;
* partial cubes restored from a checkpoint are added on the driver where
  they meet (consecutive runs) and sent with the addition task that needs
  them, so the scheduler can recompute everything after a worker loss.

Each task holds one observation's events at a time: a worker's memory is
bounded by the largest run (times its number of threads), not the data set.
"""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from contextlib import contextmanager

from ..errors import BgcubeError
from ..progress import progress_bar
from .partial import (
    PairwiseSum,
    PartialCubes,
    StoreFiles,
    add_partials,
    compute_partial,
    failure_error,
)

__all__ = ["dask_client", "check_dask_options", "compute_on_dask"]

#: Seconds to wait for a Dask scheduler given by its address (dask's own default).
CONNECT_TIMEOUT = 30


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - dask is an optional extra
        raise ImportError(
            "building on Dask needs dask and distributed: "
            'pip install -e ".[dask]" in the bgcube source folder'
        ) from exc
    return distributed


def check_dask_options(scheduler=None, workers=None):
    """Check the ``scheduler``/``workers`` options (see `dask_client`) before any work.

    Returns
    -------
    distributed : module
        The ``distributed`` package.

    Raises
    ------
    ValueError
        If both or neither are given, or ``workers`` is not a positive integer.
    ImportError
        If dask.distributed is not installed.
    """
    if (scheduler is None) == (workers is None):
        raise ValueError(
            f"give either scheduler or workers, not both nor neither (got scheduler={scheduler!r}, "
            f"workers={workers!r})"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return _import_distributed()


@contextmanager
def dask_client(scheduler=None, workers=None):
    """A dask.distributed client for a build, closed afterwards if made here.

    Parameters
    ----------
    scheduler : str or `distributed.Client`, optional
        Address of a running scheduler (``'tcp://host:8786'``), or a client
        (used as is and left open).
    workers : int, optional
        Start a local cluster of this many worker processes (one thread
        each), closed when done.

    Yields
    ------
    client : `distributed.Client`

    Raises
    ------
    ValueError
        If both or neither are given, or ``workers`` is not a positive integer.
    """
    distributed = check_dask_options(scheduler, workers)
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:  # no scheduler there, or none answering
            raise BgcubeError(
                f"cannot reach the Dask scheduler {scheduler!r} (the scheduler option, "
                f"--scheduler) within {CONNECT_TIMEOUT} s: {' '.join(str(exc).split())}"
            ) from exc
        with client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _compute_with_store(partial_function, task, store):
    # warnings raised on a worker would not reach the user: send them along
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        partial = partial_function(dataclasses.replace(task, store=store))
    return dataclasses.replace(partial, caught_warnings=tuple(w.message for w in caught))


def compute_on_dask(
    plans,
    client,
    *,
    checkpoint=None,
    fail_fast=False,
    progress=None,
    retries=2,
    partial_function=compute_partial,
    finish=None,
):
    """Compute and add the partial cubes of every group on a Dask cluster.

    Same inputs and results as `~bgcube.make.partial.compute_serial`, plus:

    Parameters
    ----------
    client : `distributed.Client`
    retries : int
        Times a task that raises (other than a run that cannot be read,
        which is a result) is tried again.

    Returns
    -------
    sums : dict of int to PartialCubes (or what ``finish`` returns)
    reused : list of int
        OBS_IDs taken from the checkpoint.
    """
    distributed = _import_distributed()
    token = uuid.uuid4().hex[:12]
    shipped = {}  # id(store) -> future, for stores given as objects

    def store_of(task):
        if isinstance(task.store, StoreFiles):
            return task.store
        key = id(task.store)
        if key not in shipped:
            shipped[key] = client.scatter(task.store, broadcast=True, hash=False)
        return shipped[key]

    counter = iter(range(1 << 62))

    def add(a, b):
        if not isinstance(a, distributed.Future) and not isinstance(b, distributed.Future):
            return add_partials(a, b)  # both restored from the checkpoint
        return client.submit(
            add_partials, a, b, key=f"bgcube-sum-{token}-{next(counter)}", retries=retries
        )

    leaves, roots, reused = {}, {}, []
    try:
        for gid, tasks in plans.items():
            tree = PairwiseSum(add)
            for task in tasks:
                partial = checkpoint.load(task) if checkpoint is not None else None
                if partial is not None:
                    reused.append(task.obs_id)
                    tree.push(partial)
                    continue
                future = client.submit(
                    _compute_with_store,
                    partial_function,
                    dataclasses.replace(task, store=None),
                    store_of(task),
                    key=f"bgcube-run-{token}-{task.obs_id}",
                    retries=retries,
                )
                leaves[future] = task
                tree.push(future)
            roots[gid] = tree.result(PartialCubes())

        done = distributed.as_completed(list(leaves), with_results=True)
        for future, partial in progress_bar(done, total=len(leaves), desc="runs", enabled=progress):
            task = leaves.pop(future)
            del future
            for warning in partial.caught_warnings:
                warnings.warn(warning, stacklevel=2)
            if partial.failed and fail_fast:
                raise failure_error(partial)
            if checkpoint is not None:
                checkpoint.save(task, partial)
        sums = {}
        if finish is None:
            futures = {gid: r for gid, r in roots.items() if isinstance(r, distributed.Future)}
            sums = dict(roots)
            sums.update(zip(futures, client.gather(list(futures.values())), strict=True))
        else:  # one group at a time, in the order of plans: memory bounded, order fixed
            for gid in list(roots):
                root = roots.pop(gid)
                sums[gid] = finish(
                    gid, root.result() if isinstance(root, distributed.Future) else root
                )
                del root
    finally:
        if checkpoint is not None:
            checkpoint.wait()  # every finished run is saved, even after an error
        pending = list(leaves) + [r for r in roots.values() if isinstance(r, distributed.Future)]
        if pending:
            client.cancel(pending)
        if shipped:
            client.cancel(list(shipped.values()))
    return sums, reused

"""Data stores that misbehave on purpose, for the build tests (serial and Dask).

They live in an importable module (not a test file) so that Dask worker
processes can unpickle them.
"""

import os
from pathlib import Path

import numpy as np

from bgcube.data import DataStore


class ScriptedStore(DataStore):
    """A data store that records the runs it reads and can be told to misbehave.

    Parameters
    ----------
    store : DataStore
        The real store (its tables and files are used).
    interrupt_after : int, optional
        Raise KeyboardInterrupt when asked for a run after this many reads.
    flaky_obs_id : int, optional
        The first read of this run fails: ``flaky='raise'`` raises OSError,
        ``flaky='exit'`` ends the process (a Dask worker lost mid-task).
        ``marker`` (a file) remembers across processes that it happened.
    """

    def __init__(
        self, store, *, interrupt_after=None, flaky_obs_id=None, flaky="raise", marker=None
    ):
        self.__dict__.update(store.__dict__)
        self.calls = []
        self.interrupt_after = interrupt_after
        self.flaky_obs_id = flaky_obs_id
        self.flaky = flaky
        self.marker = None if marker is None else str(marker)

    def observation(self, obs_id, **kwargs):
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        if obs_id == self.flaky_obs_id and not Path(self.marker).exists():
            Path(self.marker).touch()
            if self.flaky == "exit":
                os._exit(1)
            raise OSError(f"flaky file system while reading OBS_ID {obs_id}")
        self.calls.append(int(obs_id))
        return super().observation(obs_id, **kwargs)


def assert_same_models(result_a, result_b):
    """Two builds gave the same groups, runs, failures and bitwise equal cubes."""
    assert [g.group_id for g in result_a.groups] == [g.group_id for g in result_b.groups]
    assert sorted(result_a.failed) == sorted(result_b.failed)
    for a, b in zip(result_a.groups, result_b.groups, strict=True):
        assert a.obs_ids == b.obs_ids
        assert (a.n_events, a.n_excluded, a.n_filled) == (b.n_events, b.n_excluded, b.n_filled)
        assert a.time == b.time
        assert (a.model is None) == (b.model is None)
        if a.model is None:
            continue
        for name in ("counts_cube", "livetime_cube", "background_cube"):
            x = np.asarray(getattr(a.model, name).data)
            y = np.asarray(getattr(b.model, name).data)
            assert x.dtype == y.dtype == np.float64
            assert np.array_equal(x, y), f"group {a.group_id} {name} differs"

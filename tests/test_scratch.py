"""Scratch arrays: rows in an unnamed temporary file, pages given back, data kept."""

import mmap
import os
import sys

import numpy as np
import pytest

from bgcube.fit.joint_fitting import _count_sums
from bgcube.io.scratch import release_rows, scratch_array


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_scratch_array_is_an_unnamed_zeroed_file_mapping(tmp_path):
    a = scratch_array((3, 4, 5), np.float32, tmp_path)
    assert isinstance(a, np.memmap) and a.dtype == np.float32 and a.shape == (3, 4, 5)
    assert not a.any()
    assert list(tmp_path.iterdir()) == []  # no name in the folder


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"),
    reason="resident memory read from /proc/self/statm (Linux)",
)
def test_released_rows_keep_their_data_and_leave_resident_memory(tmp_path):
    rows, shape = 64, (101, 625)  # 16 MiB of float32
    a = scratch_array((rows, *shape), np.float32, tmp_path)
    before = _resident_mib()
    for k in range(rows):
        a[k] = k
    filled = _resident_mib()
    for k in range(rows):
        release_rows(a, k, k + 1)
    released = _resident_mib()
    assert filled - before > 12  # the written pages were resident...
    assert filled - released > 12  # ...and are given back
    view = np.asarray(a)[10:50]  # views of the mapping read the same data back
    assert all(float(view[k - 10, 7, 11]) == k for k in range(10, 50))
    release_rows(view, 0, 40)
    assert [float(a[k, 100, 624]) for k in (0, 31, 63)] == [0.0, 31.0, 63.0]


def test_release_leaves_other_arrays_alone():
    a = np.arange(12.0).reshape(3, 4)
    release_rows(a, 0, 3)
    release_rows(a[:, ::2], 0, 3)  # not C-contiguous, not mapped: nothing to do
    np.testing.assert_array_equal(a, np.arange(12.0).reshape(3, 4))


def test_fit_sums_equal_the_direct_sums_chunk_by_chunk(tmp_path, monkeypatch):
    import bgcube.fit.joint_fitting as jf

    monkeypatch.setattr(jf, "runs_per_chunk", lambda bins: 3)  # chunks of 3 of 10 runs
    rng = np.random.default_rng(2)
    counts = scratch_array((10, 6, 9), np.float32, tmp_path)
    counts[:] = rng.poisson(5.0, counts.shape)
    mask = (rng.random((10, 6)) > 0.2).astype(float)
    spatial = np.stack([np.ones(10), rng.random(10)], axis=1)
    fitted = rng.random(10) > 0.3
    counts_run, pixel = _count_sums(counts, mask, spatial, fitted)
    direct = np.asarray(counts, dtype=np.float64)
    np.testing.assert_array_equal(counts_run, direct.sum(axis=2) * mask)
    u = np.flatnonzero(fitted)
    expected = np.einsum("rm,re,rep->mep", spatial[u], mask[u], direct[u])
    np.testing.assert_allclose(pixel, expected, rtol=1e-14)

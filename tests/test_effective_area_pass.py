"""A joint build reads each run's effective area in the pass over its events: a gzipped
file holding both HDUs (as the H.E.S.S. DL3 DR1's do) is decompressed once, not twice."""

import shutil

import numpy as np
import pytest
from _irf_helpers import CONDITIONS, with_aeff_in_event_files
from astropy.table import Table

import bgcube.io.prefetch as prefetch
from bgcube.binning import EFFECTIVE_AREA_COLUMN
from bgcube.data import DataStore
from bgcube.data.irf import with_effective_area
from bgcube.make import make_models
from bgcube.simulate import make_test_dataset


@pytest.fixture(scope="module")
def one_file_runs(tmp_path_factory):
    """A simulated data set in gzipped files that hold the events and an AEFF HDU after them."""
    root = tmp_path_factory.mktemp("aeff_pass")
    dataset = make_test_dataset(root / "sim", n_obs=8, random_state=3)
    return with_aeff_in_event_files(dataset.path, root / "one_file")


def _file_readers(monkeypatch):
    """A list that collects every reader of a file's bytes (`bgcube.io.prefetch.FileBytes`)."""
    readers = []
    original = prefetch.FileBytes.__init__

    def collect(self, path):
        original(self, path)
        readers.append(self)

    monkeypatch.setattr(prefetch.FileBytes, "__init__", collect)
    return readers


def test_each_file_is_decompressed_once(one_file_runs, tmp_path, monkeypatch):
    store = DataStore.from_dir(one_file_runs)
    # files read in this thread only (a read-ahead that comes late is dropped, and the
    # file read again: a matter of timing, not of the build)
    monkeypatch.setattr("bgcube.make.partial.spare_core", lambda: False)
    readers = _file_readers(monkeypatch)
    result = make_models(
        one_file_runs,
        tmp_path / "out",
        exclusion="none",
        progress=False,
        fit_glat_min=0.0,
        conditions=CONDITIONS,
    )
    monkeypatch.undo()
    assert EFFECTIVE_AREA_COLUMN in [c.column for c in result.joint.model.conditions]
    files = {str(store.hdu_location(int(i), "events")[0]) for i in store.obs_ids}
    assert {str(store.hdu_location(int(i), "aeff")[0]) for i in store.obs_ids} == files
    # readers that decompressed the events (others read a header: the first kB); the
    # effective area's reader handed its bytes on to the events' reader
    sizes = {f: len(prefetch.read_file_bytes(f)) for f in files}
    decompressed = {f: 0 for f in files}
    for reader in readers:
        if str(reader.path) in files and len(reader.buffer) > sizes[str(reader.path)] // 2:
            decompressed[str(reader.path)] += 1
    assert decompressed == dict.fromkeys(files, 1)
    # the areas are those read on their own
    expected = with_effective_area(store, store.obs_table)[EFFECTIVE_AREA_COLUMN]
    written = Table.read(tmp_path / "out" / "bg_observation_table.fits.gz")
    assert np.array_equal(np.asarray(written[EFFECTIVE_AREA_COLUMN]), np.asarray(expected))


def test_the_same_model_as_with_the_areas_read_first(one_file_runs, tmp_path):
    store = DataStore.from_dir(one_file_runs)
    table = with_effective_area(store, store.obs_table)  # the column given: no read in the pass
    given = tmp_path / "given"
    shutil.copytree(one_file_runs, given)
    table.write(given / "obs-index.fits.gz", overwrite=True)
    options = dict(exclusion="none", progress=False, fit_glat_min=0.0, conditions=CONDITIONS)
    in_pass = make_models(one_file_runs, tmp_path / "a", **options).joint.model
    first = make_models(given, tmp_path / "b", **options).joint.model
    assert [c.name for c in in_pass.conditions] == [c.name for c in first.conditions]
    assert EFFECTIVE_AREA_COLUMN in [c.column for c in in_pass.conditions]
    np.testing.assert_array_equal(in_pass.coef_a, first.coef_a)
    np.testing.assert_array_equal(in_pass.coef_s, first.coef_s)


def test_a_resumed_build_takes_the_areas_from_its_checkpoint(one_file_runs, tmp_path, monkeypatch):
    options = dict(exclusion="none", progress=False, fit_glat_min=0.0, conditions=CONDITIONS)
    out = tmp_path / "out"
    first = make_models(one_file_runs, out, keep_checkpoint=True, **options).joint.model
    readers = _file_readers(monkeypatch)
    again = make_models(one_file_runs, out, resume=True, overwrite=True, **options).joint.model
    monkeypatch.undo()
    store = DataStore.from_dir(one_file_runs)
    files = {str(store.hdu_location(int(i), "events")[0]) for i in store.obs_ids}
    sizes = {f: len(prefetch.read_file_bytes(f)) for f in files}
    runs_read = [r for r in readers if str(r.path) in files]
    # neither the build nor its read-ahead thread decompressed a restored run's events or
    # effective area again (a header at most)
    assert all(len(r.buffer) < sizes[str(r.path)] // 2 for r in runs_read)
    np.testing.assert_array_equal(again.coef_a, first.coef_a)
    np.testing.assert_array_equal(again.coef_s, first.coef_s)

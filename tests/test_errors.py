"""One test per kind of bad input: the exception type, and a message naming the file or value.

The kinds are those of bgcube's error vocabulary (`bgcube.errors`): a bad
file (`FileFormatError`, with the file, HDU and column or keyword), bad
binning (`BinningError`), bad events (dropped, counted and reported by
`DroppedEventsWarning`; unusable columns give `EventDataError`), a bad
observation (`ObservationError` naming OBS_ID and file, or the time), a
missing input file (`DataNotFoundError`) and an existing output
(`OutputExistsError`). Every error is a `BgcubeError` and keeps a built-in
base (``ValueError``, ``FileNotFoundError``, ...) for existing handlers.
"""

import gzip
import warnings
import zlib

import astropy.units as u
import numpy as np
import pytest
from _io_helpers import coded_cube, write_bkg
from astropy.io import fits
from astropy.table import Table

from bgcube import CubeAxis, FOVCube, FOVCubeBackgroundModel
from bgcube.array import Binning
from bgcube.backend import from_numpy, to_numpy
from bgcube.data.events import EventList, count_nonfinite, event_coordinates
from bgcube.data.observation import Observation
from bgcube.errors import (
    BgcubeError,
    BinningError,
    DataNotFoundError,
    DroppedEventsWarning,
    EventDataError,
    FileFormatError,
    ObservationError,
    OutputExistsError,
    file_format_errors,
)

DETX = np.linspace(-2, 2, 5) * u.deg
ENERGY = np.geomspace(1, 100, 3) * u.TeV


# --------------------------------------------------------------------------
# bad files
# --------------------------------------------------------------------------
def test_bad_file_names_file_hdu_column_and_value(tmp_path):
    path = write_bkg(tmp_path / "garbage_unit.fits", coded_cube(), unit="furlongs per fortnight")
    with pytest.raises(FileFormatError) as info:
        FOVCube.read(path)
    message = str(info.value)
    for part in ("garbage_unit.fits", "BACKGROUND", "'BKG'", "furlongs per fortnight"):
        assert part in message
    assert info.value.filename.endswith("garbage_unit.fits") and info.value.hdu == "BACKGROUND"
    assert isinstance(info.value, BgcubeError) and isinstance(info.value, ValueError)


def test_corrupt_gzip_is_a_file_error_with_its_cause(tmp_path):
    """What zlib raises on a damaged stream becomes a FileFormatError naming the file."""
    path = tmp_path / "whole.fits"
    coded_cube().write(path)
    stream = bytearray(gzip.compress(path.read_bytes(), mtime=0))
    stream[40:44] = b"\xff\x00\xff\x00"  # inside the deflate data (the header is 10 bytes)
    bad = tmp_path / "corrupt.fits.gz"
    bad.write_bytes(bytes(stream))
    with pytest.raises(FileFormatError, match="corrupt.fits.gz") as info:
        FOVCube.read(bad)
    assert isinstance(info.value.__cause__, zlib.error)  # the low-level error is kept
    assert "while decompressing" in str(info.value)


def test_file_format_errors_converts_only_low_level_errors():
    with pytest.raises(FileFormatError) as info:
        with file_format_errors("f.fits", "EVENTS", "event list"):
            float("garbage")
    assert "'f.fits'" in str(info.value) and "'EVENTS'" in str(info.value)
    assert "event list" in str(info.value) and "garbage" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ObservationError):  # bgcube's own errors pass unchanged
        with file_format_errors("f.fits"):
            raise ObservationError("OBS_ID 1: no pointing")
    with pytest.raises(AttributeError):  # a bug in bgcube is not a file error
        with file_format_errors("f.fits"):
            None.upper()  # noqa: B018
    library = {"__name__": "astropy.io.fits.fake"}
    exec("def parse():\n    raise AttributeError('no size')\n", library)
    with pytest.raises(FileFormatError, match="no size"):  # astropy failing on the file is
        with file_format_errors("f.fits"):
            library["parse"]()


def test_missing_input_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="nowhere.fits") as info:
        FOVCube.read(tmp_path / "nowhere.fits")
    assert isinstance(info.value, FileNotFoundError)


def test_existing_output_is_not_overwritten(tmp_path):
    path = tmp_path / "cube.fits"
    coded_cube().write(path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="cube.fits") as info:
        coded_cube().write(path)
    assert isinstance(info.value, FileExistsError) and path.read_bytes() == before


# --------------------------------------------------------------------------
# bad binning
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edges", "parts"),
    [
        ([0.0, 1.0, 1.0, 2.0] * u.deg, ["strictly increasing", "edge 2 = 1.0"]),
        ([0.0, 2.0, 1.0] * u.deg, ["strictly increasing", "edge 2 = 1.0", "edge 1 = 2.0"]),
        ([0.0, np.nan, 2.0] * u.deg, ["finite", "edge 1 = nan"]),
        ([0.0, 1.0, np.inf] * u.deg, ["finite", "edge 2 = inf"]),
        ([1.0] * u.deg, ["at least 2 edges", "got 1"]),
        ([0.0, 1.0, 2.0], ["angle or an energy", "no unit"]),
        ([0.0, 1.0, 2.0] * u.m, ["angle or an energy", "unit m"]),
        ([[0.0, 1.0], [2.0, 3.0]] * u.deg, ["one-dimensional", "(2, 2)"]),
    ],
)
def test_bad_edges_are_binning_errors_naming_the_value(edges, parts):
    with pytest.raises(BinningError) as info:
        CubeAxis(edges, "DETX")
    message = str(info.value)
    assert "DETX" in message
    for part in parts:
        assert part in message, (part, message)
    assert isinstance(info.value, ValueError)


def test_mismatched_units_are_binning_errors():
    with pytest.raises(BinningError, match="unit TeV"):
        FOVCube(ENERGY, DETX, ENERGY)  # energies given as DETX edges
    with pytest.raises(BinningError, match="energies"):
        FOVCube(DETX, DETX, DETX)
    with pytest.raises(BinningError, match="DETX"):
        CubeAxis([1 * u.deg, 1 * u.TeV], "DETX")  # one list, two kinds of unit
    with pytest.raises(BinningError, match="positive"):
        CubeAxis([-1.0, 1.0] * u.TeV, "ENERGY")  # log centres of energies


def test_core_binning_raises_binning_error_without_astropy():
    with pytest.raises(BinningError, match="edge 1 = 0.5"):
        Binning.from_edges([1.0, 0.5, 2.0])


# --------------------------------------------------------------------------
# bad events
# --------------------------------------------------------------------------
def _events(n=10):
    rng = np.random.default_rng(5)
    return Table(
        {
            "ENERGY": rng.uniform(1.5, 90, n) * u.TeV,
            "DETX": rng.uniform(-1.9, 1.9, n) * u.deg,
            "DETY": rng.uniform(-1.9, 1.9, n) * u.deg,
        },
        meta={"OBS_ID": 23},
    )


def test_nonfinite_events_are_dropped_counted_and_reported(xp):
    table = _events()
    table["ENERGY"][1] = np.nan
    table["DETX"][3] = np.inf
    table["DETY"][4] = -np.inf
    table["DETX"][1] = np.nan  # a second bad value in an already bad event
    finite = table[[0, 2, 5, 6, 7, 8, 9]]
    expected = FOVCube(DETX, DETX, ENERGY, scheme="bg_counts_cube").fill_events(finite)
    cube = FOVCube(DETX, DETX, ENERGY, scheme="bg_counts_cube").to_backend(xp)
    with pytest.warns(DroppedEventsWarning) as record:
        cube.fill_events(table)
    assert len(record) == 1
    warning = record[0].message
    assert "dropped 3 of 10 events" in str(warning) and "OBS_ID 23" in str(warning)
    assert (warning.n_dropped, warning.n_events) == (3, 10)
    np.testing.assert_array_equal(to_numpy(cube.data), to_numpy(expected.data))
    assert float(np.sum(to_numpy(cube.data))) == 7


def test_dropped_events_through_the_model_name_the_file():
    events = EventList(
        {"ENERGY": [2.0, np.nan, 3.0], "DETX": [0.1, 0.2, 0.3], "DETY": [0.0, 0.0, 0.0]},
        meta={"OBS_ID": 7},
        filename="run_7.fits",
    )
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    with pytest.warns(DroppedEventsWarning, match=r"OBS_ID 7, file 'run_7.fits': dropped 1 of 3"):
        model.fill_events([events])
    assert float(np.sum(model.counts_cube.data)) == 2


def test_finite_events_give_no_warning():
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fill_events([_events()])


def test_nonfinite_weights_are_dropped_counted_and_reported(xp):
    table = _events(3)
    cube = FOVCube(DETX, DETX, ENERGY, scheme="bg_counts_cube").to_backend(xp)
    weights = from_numpy(np.array([np.nan, 1.0, np.inf]), xp)
    with pytest.warns(DroppedEventsWarning, match=r"dropped 2 of 3 events with a NaN or infinite "):
        cube.fill_events([table], weights=[weights])
    total = float(np.sum(to_numpy(cube.data)))
    assert total == 1 and np.all(np.isfinite(to_numpy(cube.data)))


BAD_FILL_ARGUMENTS = [
    ("events.fits", {}, r"got the file name 'events.fits': read it first"),
    (None, {}, r"or a list of them; got None"),
    (5, {}, r"or a list of them; got the int 5"),
    ([None], {}, r"or a list of them; got None"),
    ([_events()], {"weights": np.ones(10)}, r"weights must be a list with one weight array per "),
    ([_events()], {"weights": [np.ones(10)] * 2}, r"got 2 weight arrays for 1 event lists"),
    ((e for e in [_events()]), {"weights": [np.ones(10)] * 2}, r"got 2 weight arrays for 1 event"),
]


@pytest.mark.parametrize(("events", "kwargs", "message"), BAD_FILL_ARGUMENTS)
def test_fill_events_names_what_it_expects(events, kwargs, message):
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    with pytest.raises(EventDataError, match=message):
        model.fill_events(events, **kwargs)


def test_fill_events_reads_a_generator_of_event_lists():
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    model.fill_events(table for table in [_events(), _events()])
    assert float(np.sum(model.counts_cube.data)) == 20


def test_fill_obs_names_its_arguments():
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    with pytest.raises(TypeError, match=r"data_store must be a bgcube DataStore .* got None"):
        model.fill_obs(Table({"OBS_ID": [1]}), None)
    with pytest.raises(ObservationError, match=r"with an OBS_ID column .* got None"):
        model.fill_obs(None, None)


def test_count_nonfinite_fast_and_exact_paths():
    x = np.ones(1000)
    assert count_nonfinite(x, x, x) == 0
    y = x.copy()
    y[[3, 500]] = [np.nan, -np.inf]
    z = x.copy()
    z[[3, 7]] = np.inf
    assert count_nonfinite(x, y, z) == 3
    big = np.full(10, 1e308)  # finite values whose sum overflows
    assert count_nonfinite(big, big, big) == 0
    assert count_nonfinite(np.full(4, 3e38, dtype=np.float32), x[:4], x[:4]) == 0


def test_unusable_event_columns_are_event_data_errors():
    table = _events()
    del table["DETY"]
    with pytest.raises(EventDataError, match="no DETY column"):
        event_coordinates(table)
    table = _events()
    table["ENERGY"].unit = u.m
    with pytest.raises(EventDataError, match="ENERGY has unit m"):
        event_coordinates(table)


# --------------------------------------------------------------------------
# bad observations
# --------------------------------------------------------------------------
HEADER = {
    "OBS_ID": 42,
    "RA_PNT": 83.6,
    "DEC_PNT": 22.0,
    "ALT_PNT": 50.0,
    "AZ_PNT": 180.0,
    "ONTIME": 1600.0,
    "LIVETIME": 1500.0,
}


def _write_run(path, drop=(), **changes):
    header = {k: v for k, v in dict(HEADER, **changes).items() if k not in drop}
    events = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERGY", "D", unit="TeV", array=[1.0, 2.0]),
            fits.Column("RA", "D", unit="deg", array=[83.5, 83.7]),
            fits.Column("DEC", "D", unit="deg", array=[22.1, 21.9]),
            fits.Column("TIME", "D", unit="s", array=[10.0, 20.0]),
        ],
        name="EVENTS",
    )
    events.header.update(header)
    gti = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", array=[0.0]), fits.Column("STOP", "D", array=[1600.0])],
        name="GTI",
    )
    fits.HDUList([fits.PrimaryHDU(), events, gti]).writeto(path)
    return path


@pytest.mark.parametrize(
    ("changes", "drop", "parts"),
    [
        ({"ONTIME": 0.0}, (), ["ONTIME must be a positive time", "0.0 s"]),
        ({"ONTIME": -5.0}, (), ["ONTIME must be a positive time", "-5.0 s"]),
        ({"LIVETIME": 0.0}, (), ["LIVETIME must be a positive time"]),
        ({}, ("RA_PNT",), ["no pointing", "RA_PNT"]),
        ({}, ("RA_PNT", "DEC_PNT"), ["no pointing"]),
        ({"DEC_PNT": 95.0}, (), ["invalid pointing", "DEC_PNT = 95.0"]),
        ({"RA_PNT": "north"}, (), ["RA_PNT = 'north' is not a number"]),
        ({"ONTIME": "long"}, (), ["ONTIME = 'long' is not a number"]),
    ],
)
def test_bad_observation_names_obs_id_and_file(tmp_path, changes, drop, parts):
    path = _write_run(tmp_path / "run_000042.fits", drop, **changes)
    with pytest.raises(ObservationError) as info:
        Observation.read(path)
    message = str(info.value)
    assert "OBS_ID 42" in message and "run_000042.fits" in message
    for part in parts:
        assert part in message, (part, message)


def test_bad_gti_is_a_file_error_naming_the_row(tmp_path):
    path = _write_run(tmp_path / "run.fits", drop=("ONTIME", "LIVETIME"))
    with fits.open(path, mode="update") as hdulist:
        hdulist["GTI"].data["STOP"][0] = -1.0
    with pytest.raises(
        FileFormatError,
        match=r"run.fits', HDU 'GTI': GTI row 0 has START 0.0 s "
        r"and STOP -1.0 s",
    ):
        Observation.read(path)  # no ONTIME: the GTI gives it


@pytest.mark.parametrize("time", [0 * u.s, -1 * u.s, np.nan * u.s, np.inf * u.s, 3 * u.m])
def test_bad_observation_time_is_rejected_naming_the_value(time):
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETX, ENERGY)
    with pytest.raises(ObservationError) as info:
        model.add_observation_time(time)
    assert str(time.value) in str(info.value)
    assert float(np.sum(model.livetime_cube.data)) == 0  # nothing was added

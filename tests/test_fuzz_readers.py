"""Fuzz tests of every file reader: damaged files read correctly or raise a BgcubeError.

Each test starts from a valid file written by bgcube (a cube table in the
GADF and the legacy layout, an image file, a model file, an AEFF_2D table
(read for its effective area at 1 TeV), a simulated event
file with its GTI, the obs-index and hdu-index of a simulated data set, an
exclusion table in FITS and ECSV, an observation-group ECSV) and applies
random damage (`_fuzz_damage`): missing, extra or renamed columns, wrong
TDIM, wrong shapes, NaN or infinity in edges, swapped lo/hi columns,
garbage units, missing or garbage header keywords, zero or two rows,
overwritten bytes, truncated plain and gzipped files.

Every case must either read into a valid object or raise a
`~bgcube.errors.BgcubeError` whose message names the file; no other
exception may escape and no read may hang (a hard per-case time limit of
`HANG_LIMIT_S` seconds, besides hypothesis' deadline). Damage that touches
nothing a reader uses (an unrelated column or keyword, gzip compression)
must give back exactly the undamaged result. Warnings other than bgcube's
and astropy's fail the case (astropy's describe what it repaired or
guessed in a damaged header, e.g. a truncated file or an unknown unit;
anything else, such as NumPy's "invalid value" or an unclosed file,
points at a reader that did not check its input).

The number of cases is the hypothesis profile's (``ci``: 40 per reader;
``BGCUBE_HYPOTHESIS_PROFILE=long``: 1000); each test records how many
cases it tried and how they ended, and ``conftest.py`` prints those counts
at the end of the run.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import gzip
import signal
import warnings
from collections import Counter

import astropy.units as u
import numpy as np
import pytest
from _fuzz_damage import HARMLESS, UNRELATED, EcsvDamage, FitsDamage
from _io_helpers import coded_cube
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.data.exclusion import ExclusionRegions
from bgcube.data.observation import Observation
from bgcube.data.store import DataStore
from bgcube.errors import BgcubeError, BgcubeWarning
from bgcube.make.grouping import ObservationGroups

#: Hard limit for one case, s: far above the few ms a case takes, it only
#: turns a hang into a failure.
HANG_LIMIT_S = 60

#: hypothesis deadline of one case (a slow case is reported with its damage).
DEADLINE = datetime.timedelta(seconds=20)


class Hang(Exception):
    """A reader did not return within `HANG_LIMIT_S`."""


@contextlib.contextmanager
def hang_limit(seconds=HANG_LIMIT_S):
    """Raise `Hang` in the main thread if the block runs longer than ``seconds``."""

    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------
# valid files
# ---------------------------------------------------------------------------
def _small_model():
    cube = coded_cube()
    model = FOVCubeBackgroundModel.set_cube_binning(
        cube.coordx_edges, cube.coordy_edges, cube.energy_edges
    )
    rng = np.random.default_rng(3)
    model.counts_cube.data = model.counts_cube.data + rng.poisson(3.0, cube.shape)
    model.add_observation_time(1800 * u.s)
    return model.compute_rate()


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap():
    """Leave what exists before this module out of the per-case garbage collection.

    Each case runs ``gc.collect()`` so that a file it leaves open is reported in
    that case; with ``gc.freeze()`` the collection walks only the objects made
    since, not the whole session's heap (JAX, astropy, earlier modules).
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the valid files and a simulated data set (built once)."""
    from bgcube.simulate import make_test_dataset

    root = tmp_path_factory.mktemp("fuzz")
    cube = coded_cube()
    cube.write(root / "cube_table.fits")
    cube.write(root / "cube_legacy.fits", legacy=True)
    cube.write(root / "cube_image.fits", format="image")
    _small_model().write(root / "model.fits")
    ExclusionRegions([83.6, 300.0], [22.0, -10.0], [0.3, 1.0], names=["a", "b"]).write(
        root / "exclusion.fits"
    )
    ExclusionRegions([83.6, 300.0], [22.0, -10.0], [0.3, 1.0], names=["a", "b"]).write(
        root / "exclusion.ecsv"
    )
    ObservationGroups.from_bins([0, 20, 40, 60], [0, 180, 360]).write(root / "groups.ecsv")
    _aeff_hdulist().writeto(root / "aeff.fits")
    make_test_dataset(
        root / "ds",
        n_obs=2,
        random_state=1,
        background_rate=0.2 * u.Hz,
        ontime=120 * u.s,
        write_bkg=False,
    )
    return root


def _damaged_path(folder, blob, stem, suffix):
    """Write the damaged bytes (or text) next to the valid files; gzip gets ``.gz``."""
    if isinstance(blob, bytes) and blob[:2] == b"\x1f\x8b":
        suffix += ".gz"
    path = folder / f"{stem}_damaged{suffix}"
    if isinstance(blob, bytes):
        path.write_bytes(blob)
    else:
        path.write_text(blob)
    return path


# ---------------------------------------------------------------------------
# readers and what a successful read must satisfy
# ---------------------------------------------------------------------------
def _cube_state(cube):
    return (
        cube.scheme,
        cube.unit,
        tuple(
            np.asarray(a.edges_canonical).tobytes()
            for a in (cube.detx_axis, cube.dety_axis, cube.energy_axis)
        ),
        np.asarray(cube.quantity.value).tobytes(),
    )


def _check_cube(cube):
    assert isinstance(cube, FOVCube)
    assert tuple(cube.data.shape) == cube.shape
    for axis in (cube.detx_axis, cube.dety_axis, cube.energy_axis):
        edges = axis.edges_canonical
        assert np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)


def _aeff_hdulist():
    """A GADF AEFF_2D table (12 energy x 5 offset bins, EFFAREA with TDIM)."""
    from astropy.io import fits

    e_edges, t_edges = np.geomspace(0.1, 100, 13), np.linspace(0.0, 2.5, 6)
    area = np.outer(3.0 - 0.5 * (t_edges[1:] + t_edges[:-1]), np.arange(1.0, 13.0)) * 1e4
    columns = [
        fits.Column("ENERG_LO", "12E", "TeV", array=e_edges[None, :-1]),
        fits.Column("ENERG_HI", "12E", "TeV", array=e_edges[None, 1:]),
        fits.Column("THETA_LO", "5E", "deg", array=t_edges[None, :-1]),
        fits.Column("THETA_HI", "5E", "deg", array=t_edges[None, 1:]),
        fits.Column("EFFAREA", "60E", "m2", dim="(12,5)", array=area[None]),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="AEFF")
    hdu.header["HDUCLAS4"] = "AEFF_2D"
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def read_aeff(path):
    from bgcube.data.irf import effective_area_at

    area = effective_area_at(path, "AEFF").to_value(u.m**2)
    assert np.isfinite(area)
    return area


def read_cube(format):
    def read(path):
        cube = FOVCube.read(path, format=format)
        _check_cube(cube)
        return _cube_state(cube)

    return read


def read_model(path):
    model = FOVCubeBackgroundModel.read(path)
    state = []
    for cube in (model.counts_cube, model.livetime_cube, model.background_cube):
        if cube is not None:
            _check_cube(cube)
        state.append(None if cube is None else _cube_state(cube))
    assert model.time_convention in ("ONTIME", "LIVETIME")
    return tuple(state)


def _observation_state(obs):
    ev = obs.events
    assert len({c.shape for c in ev.columns.values()}) <= 1
    assert np.isfinite(obs.ra_pnt) and np.isfinite(obs.dec_pnt)
    seconds = obs.ontime.to_value(u.s)
    assert np.isfinite(seconds) and seconds > 0
    gti = obs.gti
    state = (
        obs.obs_id,
        obs.ra_pnt,
        obs.dec_pnt,
        seconds,
        tuple((k, v.tobytes()) for k, v in sorted(ev.columns.items())),
    )
    if gti is not None:
        state += (gti.start.tobytes(), gti.stop.tobytes())
    return state


def read_events(path):
    return _observation_state(Observation.read(path))


def read_store(hdu_index, obs_index):
    store = DataStore.from_files(hdu_index, obs_index)
    states = []
    for obs_id in store.obs_ids:
        states.append(_observation_state(store.observation(obs_id)))
    return tuple(states)


def _regions_state(regions):
    assert len(regions.ra) == len(regions.dec) == len(regions.radius) == len(regions.names)
    assert np.all(np.isfinite(regions.ra)) and np.all(np.isfinite(regions.dec))
    assert np.all((regions.radius > 0) & (regions.radius < 90))
    return (
        regions.ra.tobytes(),
        regions.dec.tobytes(),
        regions.radius.tobytes(),
        tuple(regions.names),
    )


def read_exclusion(path):
    return _regions_state(ExclusionRegions.read(path))


def read_groups(path):
    groups = ObservationGroups.read(path)
    assert np.all(groups.zen_min < groups.zen_max)
    assert np.all(np.isfinite(groups.az_min)) and np.all(np.isfinite(groups.az_max))
    return (
        groups.zen_min.tobytes(),
        groups.zen_max.tobytes(),
        groups.az_min.tobytes(),
        groups.az_max.tobytes(),
        groups.group_ids.tobytes(),
    )


# ---------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------
def _harmless(ops):
    """True if no operation touches anything a reader uses."""
    for op in ops:
        kind = op[0]
        if kind == "gzip":
            continue
        if kind == "add_column" and UNRELATED in op:
            continue
        if kind in ("set_card", "blank_card", "set_keyword") and op[2] in HARMLESS:
            continue
        return False
    return True


def _outcome(read, path, ops, expected, stats, named=()):
    """Run one damaged read; count how it ended; fail on anything but a BgcubeError.

    The error message must name the damaged file, or one of the ``named``
    files (a data store's index may point the reader to an event file).
    """
    stats["tried"] += 1
    state, error = None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with hang_limit():
                state = read(path)
        except BgcubeError as exc:
            error = (type(exc).__name__, str(exc))  # not the exception: it holds frames
        gc.collect()  # a file left open warns now, in the case that left it open
    foreign = [w for w in caught if not issubclass(w.category, BgcubeWarning | AstropyWarning)]
    assert not foreign, (
        f"warnings from neither bgcube nor astropy: {[str(w.message) for w in foreign]}"
    )
    if error is not None:
        stats["rejected"] += 1
        stats[error[0]] += 1
        assert any(name in error[1] for name in (path.name, *named)), f"no file named: {error}"
        return
    stats["read"] += 1
    if _harmless(ops):
        stats["harmless"] += 1
        assert state == expected, "harmless damage changed what was read"


def run_fuzz(name, damage, read, write, record_property, *, max_ops=3, named=()):
    """Fuzz ``read`` with damage drawn from ``damage``; record the counts."""
    expected = read(write(damage.valid))
    stats = Counter()

    @settings(deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def case(data):
        ops = damage.draw(data, max_ops=max_ops)
        note(f"damage: {ops}")
        _outcome(read, write(damage.apply(ops)), ops, expected, stats, named)

    try:
        case()
    finally:
        kinds = ", ".join(
            f"{k} {v}"
            for k, v in sorted(stats.items())
            if k not in ("tried", "read", "rejected", "harmless")
        )
        summary = (
            f"{name}: {stats['tried']} cases, {stats['read']} read "
            f"({stats['harmless']} harmless, equal to the original), "
            f"{stats['rejected']} rejected ({kinds or 'none'})"
        )
        record_property("fuzz_cases", summary)
    assert stats["tried"] > 0
    assert stats["read"] + stats["rejected"] == stats["tried"]


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------
FITS_FILES = {
    "cube_table": ("cube_table.fits", read_cube("table")),
    "cube_legacy": ("cube_legacy.fits", read_cube("table")),
    "cube_image": ("cube_image.fits", read_cube("image")),
    "model": ("model.fits", read_model),
    "exclusion_fits": ("exclusion.fits", read_exclusion),
    "aeff_2d": ("aeff.fits", read_aeff),
}


@pytest.mark.parametrize("name", sorted(FITS_FILES))
def test_fuzz_fits_file(name, workdir, record_property):
    filename, read = FITS_FILES[name]
    stem = filename.split(".")[0]

    def write(blob):
        return _damaged_path(workdir, blob, stem, ".fits")

    run_fuzz(name, FitsDamage((workdir / filename).read_bytes()), read, write, record_property)


def test_fuzz_event_file(workdir, record_property):
    """An EVENTS + GTI file of a simulated run (Observation.read, then its GTI)."""

    def write(blob):
        return _damaged_path(workdir, blob, "events", ".fits")

    damage = FitsDamage(_event_file_bytes(workdir))
    run_fuzz("event_file", damage, read_events, write, record_property)


def _event_file_bytes(workdir):
    """The first simulated run's file, uncompressed."""
    raw = sorted((workdir / "ds" / "data").glob("*.fits*"))[0].read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


@pytest.mark.parametrize("index", ["hdu-index", "obs-index"])
def test_fuzz_index_files(index, workdir, record_property):
    """A damaged obs-index or hdu-index: DataStore.from_files, then every observation."""
    folder = workdir / "ds"
    valid = {name: folder / f"{name}.fits.gz" for name in ("hdu-index", "obs-index")}
    raw = gzip.decompress(valid[index].read_bytes())

    def write(blob):
        return _damaged_path(folder, blob, index, ".fits")

    def read(path):
        paths = dict(valid, **{index: path})
        return read_store(paths["hdu-index"], paths["obs-index"])

    named = ("hdu-index", "obs-index", "sim_obs_id_")  # a bad row may point to another file
    run_fuzz(index, FitsDamage(raw), read, write, record_property, named=named)


ECSV_FILES = {
    "exclusion_ecsv": ("exclusion.ecsv", read_exclusion),
    "groups_ecsv": ("groups.ecsv", read_groups),
}


@pytest.mark.parametrize("name", sorted(ECSV_FILES))
def test_fuzz_ecsv_file(name, workdir, record_property):
    filename, read = ECSV_FILES[name]
    stem = filename.split(".")[0]

    def write(text):
        return _damaged_path(workdir, text, stem, ".ecsv")

    run_fuzz(name, EcsvDamage((workdir / filename).read_text()), read, write, record_property)


#: Damage the fuzzing found escaping or hanging before the readers were fixed.
REGRESSIONS = [
    ("cube_table", [("set_card", 1, "NAXIS2", "-99999999999"), ("gzip",)]),  # endless loop
    ("cube_table", [("set_card", 0, "SIMPLE", "F"), ("gzip",)]),  # endless loop
    ("cube_image", [("set_card", 1, "XTENSION", "NAN"), ("gzip",)]),  # endless loop
    ("cube_table", [("blank_card", 1, "TTYPE5")]),  # AttributeError (unnamed column)
    ("cube_table", [("set_card", 1, "BITPIX", "'garbage '")]),  # TypeError in astropy
    ("cube_legacy", [("blank_card", 1, "TFORM7")]),  # UnboundLocalError in astropy
    ("model", [("set_card", 1, "TTYPE1", "-99999999999")]),  # AssertionError in astropy
    ("model", [("nonfinite", 1, "DETX_HI", -np.inf, 6)]),  # NumPy warning on inf edges
    (
        "cube_image",
        [("swap_lo_hi", 1, ("E_MIN", "E_MAX")), ("set_card", 2, "XTENSION", "'garbage '")],
    ),  # not a table
    ("exclusion_fits", [("nonfinite", 1, "RA", np.nan, 0)]),  # NaN centre accepted
    ("exclusion_fits", [("set_card", 0, "SIMPLE", "'garbage '")]),  # IORegistryError
    ("event_file", [("overwrite_byte", 0.421875, 0)]),  # VerifyError parsing AZ_PNT late
]


@pytest.mark.parametrize(("name", "ops"), REGRESSIONS)
def test_damage_found_by_fuzzing_is_rejected(name, ops, workdir):
    """Each of these once escaped as a non-bgcube exception, a warning or an endless loop."""
    if name == "event_file":
        damage, read = FitsDamage(_event_file_bytes(workdir)), read_events
    else:
        filename, read = FITS_FILES[name]
        damage = FitsDamage((workdir / filename).read_bytes())
    stats = Counter()
    _outcome(
        read, _damaged_path(workdir, damage.apply(ops), "regression", ".fits"), ops, None, stats
    )
    assert stats["rejected"] == 1


def test_damage_engine_really_damages(workdir):
    """Each kind of damage changes the file (so the fuzz tests exercise something)."""
    damage = FitsDamage((workdir / "cube_table.fits").read_bytes())
    ops = [
        ("drop_column", 1, "DETX_LO"),
        ("set_card", 1, "TDIM7", "'(1,2)'"),
        ("blank_card", 1, "TUNIT7"),
        ("resize_column", 1, "BKG", 7, True),
        ("gzip",),
        ("truncate", 0.5),
        ("gzip_truncate", 0.5),
    ]
    for op in ops:
        assert damage.apply([op]) != damage.valid, op
    path = _damaged_path(workdir, damage.apply([("drop_column", 1, "DETX_LO")]), "engine", ".fits")
    with pytest.raises(BgcubeError, match="DETX_LO"):
        FOVCube.read(path)
    assert b"TDIM7   =              '(1,2)'" in damage.apply([("set_card", 1, "TDIM7", "'(1,2)'")])
    resized = damage.apply([("resize_column", 1, "BKG", 7, True)])
    assert b"TFORM7  = '7D      '" in resized and b"TDIM7   =            '(5,4,3)'" in resized
    assert gzip.decompress(damage.apply([("gzip",)])) == damage.valid
    ecsv = EcsvDamage((workdir / "groups.ecsv").read_text())
    table = Table.read(ecsv.apply([("drop_column", "ZEN_MIN")]), format="ascii.ecsv")
    assert "ZEN_MIN" not in table.colnames and "ZEN_MAX" in table.colnames
    assert len(ecsv.apply([("truncate", 0.5)])) < len(ecsv.valid)


@pytest.mark.parametrize("name", sorted(FITS_FILES))
def test_harmless_damage_changes_nothing(name, workdir):
    """An unrelated column and keyword, and gzip, read exactly as the original."""
    filename, read = FITS_FILES[name]
    damage = FitsDamage((workdir / filename).read_bytes())
    table = next(i for i, h in enumerate(damage.hdus) if h["table"])
    ops = [
        ("add_column", table, UNRELATED, 3),
        ("set_keyword", 0, "FUZZKEY", "garbage"),
        ("set_card", table, "CREATOR", "'nobody'"),
        ("gzip",),
    ]
    assert _harmless(ops)
    expected = read(_damaged_path(workdir, damage.valid, "harmless_ref", ".fits"))
    assert read(_damaged_path(workdir, damage.apply(ops), "harmless", ".fits")) == expected

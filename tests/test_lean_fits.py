"""The lean reader of an EVENTS table (bgcube.io.lean_fits) against astropy.io.fits."""

import gzip

import numpy as np
import pytest
from astropy.io import fits

from bgcube.data.observation import Observation
from bgcube.errors import FileFormatError
from bgcube.io import lean_fits
from bgcube.io.lean_fits import LeanHeader, read_table_hdu

CARDS = [
    "SIMPLE  =                    T / conforms",
    "FLAG    =                    F",
    "INT     =                20136 / an int",
    "NEG     =                  -42",
    "PLUS    =                   +5",
    "ZEROS   =                00012",
    "FLOAT   =           101962602. / MET",
    "SMALL   = 0.000742870370370241 / fraction",
    "EXP     =              1.5E+03",
    "DEXP    =              -2.5D-3",
    "LOWEXP  =               1.5e3 ",
    "DOT     =                  -.5",
    "STR     = 'EVENTS  '           / Extension name",
    "LEAD    = '  ab'",
    "EMPTY   = ''",
    "BLANK   = '        '",
    "QUOTE   = 'it''s   '",
    "SLASH   = 'a/b' / with a slash",
    "LONG    = 'abc&'",
    "CONTINUE  'def'",
    "CPLX    = (1.0, 2.0)",
    "UNDEF   =",
    "DATE-OBS= '2004-03-26'",
    "DUP     =                    1",
    "DUP     =                    2",
    "COMMENT a comment",
    "HISTORY a history",
]


def _header_image(cards):
    lines = [c.ljust(80) for c in cards] + ["END".ljust(80)]
    text = "".join(lines)
    return text + " " * (-len(text) % 2880)


def _astropy_value(header, key):
    try:
        return ("ok", header[key])
    except Exception as exc:
        return ("error", type(exc).__name__)


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.parametrize("irregular", [False, True])
def test_header_values_are_astropys(irregular):
    cards = CARDS + ["NOEQUAL  value without equals"] * irregular
    image = _header_image(cards)
    reference = fits.Header.fromstring(image)
    lean = LeanHeader(image)
    assert lean.regular is not irregular  # irregular: every question goes to astropy
    keys = {c[:8].strip() for c in cards} | {"MISSING", "date-obs", "comment"}
    for key in keys:
        expected = _astropy_value(reference, key)
        got = _astropy_value(lean, key)
        assert got == expected and type(got[1]) is type(expected[1]), key
        assert (key in lean) == (key in reference), key
        assert lean.get(key, "none") == reference.get(key, "none"), key
    # the first card of a keyword wins, as in astropy
    assert lean["DUP"] == reference["DUP"] == 1


def test_plain_header_answers_without_astropy():
    lean = LeanHeader(_header_image([c for c in CARDS[:18]]))
    assert lean.regular
    assert lean["STR"] == "EVENTS" and lean["QUOTE"] == "it's" and lean["DEXP"] == -2.5e-3
    assert lean._astropy is None  # nothing asked needed astropy's parse
    assert len(lean) == 18 and lean._astropy is not None  # the rest: astropy's header


def _write_events(path, columns=None, extra_hdus=(), header=None, compress=True):
    n = 1000
    rng = np.random.default_rng(1)
    columns = columns or [
        fits.Column("EVENT_ID", "K", array=np.arange(n)),
        fits.Column("TIME", "D", "s", array=rng.uniform(0, 1e8, n)),
        fits.Column("RA", "E", "deg", array=rng.uniform(0, 360, n)),
        fits.Column("DEC", "E", "deg", array=rng.uniform(-90, 90, n)),
        fits.Column("ENERGY", "E", "TeV", array=rng.uniform(0.1, 100, n)),
        fits.Column("NAME", "8A", array=np.array(["x"] * n)),
        fits.Column("FLAGS", "3J", array=np.zeros((n, 3), dtype=np.int32)),
        fits.Column("MULTIP", "I", array=np.ones(n, dtype=np.int16)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="EVENTS")
    hdu.header.update({"OBS_ID": 7, "RA_PNT": 83.6, "DEC_PNT": 22.0, "ONTIME": 1682.0})
    hdu.header.update(header or {})
    hdus = fits.HDUList([fits.PrimaryHDU(), hdu, *extra_hdus])
    raw = path.with_suffix(".raw")
    hdus.writeto(raw, overwrite=True)
    data = raw.read_bytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [True, False])
def test_table_equals_astropys(tmp_path, compress):
    path = _write_events(tmp_path / ("run.fits.gz" if compress else "run.fits"), compress=compress)
    lean = read_table_hdu(path, "events", ("ENERGY", "RA", "DEC", "TIME"))
    with fits.open(path) as hdus:
        ref = hdus["EVENTS"]
        assert lean.name == ref.name and lean.columns.names == ref.columns.names
        assert [c.unit for c in lean.columns] == [c.unit for c in ref.columns]
        for name in ("EVENT_ID", "TIME", "RA", "DEC", "ENERGY", "MULTIP", "FLAGS"):
            got, expected = lean.data.field(name), ref.data.field(name)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
        with pytest.raises(KeyError):
            lean.data.field("NAME")  # a string column: astropy's job
        for key in ref.header:
            if key not in ("COMMENT", "HISTORY", ""):
                assert lean.header[key] == ref.header[key]
    assert read_table_hdu(path, 1) is not None


def test_unusual_files_are_left_to_astropy(tmp_path):
    plain = _write_events(tmp_path / "plain.fits.gz")
    assert read_table_hdu(plain, "EVENTS", ("ENERGY",)) is not None
    assert read_table_hdu(plain, "EVENTS", ("FLAGS",)) is not None  # a fixed-length vector
    assert read_table_hdu(plain, "EVENTS", ("NAME",)) is None  # a string column
    assert read_table_hdu(plain, "GTI") is None  # no such HDU
    assert read_table_hdu(plain, "PRIMARY") is None
    assert read_table_hdu(plain, -1) is None
    assert read_table_hdu(tmp_path / "missing.fits", "EVENTS") is None
    scaled = [fits.Column("ENERGY", "J", "TeV", bzero=2**31, array=np.arange(10, dtype=np.uint32))]
    assert (
        read_table_hdu(_write_events(tmp_path / "s.fits.gz", scaled), "EVENTS", ("ENERGY",)) is None
    )
    hierarch = _write_events(tmp_path / "h.fits.gz", header={"HIERARCH LONG KEYWORD NAME": 1})
    assert read_table_hdu(hierarch, "EVENTS") is None
    raw = gzip.decompress(plain.read_bytes())
    truncated = tmp_path / "t.fits"
    truncated.write_bytes(raw[: len(raw) - 5000])
    assert read_table_hdu(truncated, "EVENTS") is None
    notfits = tmp_path / "n.fits.gz"
    notfits.write_bytes(gzip.compress(b"x" * 10000))
    assert read_table_hdu(notfits, "EVENTS") is None
    from bgcube.io import prefetch

    assert len(prefetch._returned) <= 1 and not prefetch._ready  # nothing piles up


def _read_both(path, monkeypatch, **kwargs):
    lean = Observation.read(path, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr("bgcube.data.observation.read_table_hdu", lambda *a, **k: None)
        reference = Observation.read(path, **kwargs)
    return lean, reference


def _assert_same_observation(lean, reference):
    assert isinstance(lean.meta, LeanHeader) and not isinstance(reference.meta, LeanHeader)
    for name in ("obs_id", "ra_pnt", "dec_pnt", "ontime", "livetime", "deadc", "alt_pnt"):
        assert np.all(getattr(lean, name) == getattr(reference, name)), name
    assert lean.events.meta == reference.events.meta
    assert lean.events.columns.keys() == reference.events.columns.keys()
    for name, values in reference.events.columns.items():
        assert values.dtype == lean.events.columns[name].dtype
        np.testing.assert_array_equal(lean.events.columns[name], values)


def test_observations_read_lean_equal_astropys(tmp_path, monkeypatch):
    path = _write_events(tmp_path / "run.fits.gz")
    _assert_same_observation(*_read_both(path, monkeypatch, obs_id=7))
    # errors are astropy's path's, whichever path the file takes
    with pytest.raises(FileFormatError, match="missing event column"):
        Observation.read(path, columns=("ENERGY", "NOPE"))


def test_hess_dr1_runs_read_lean_equal_astropys(shared_data, monkeypatch):
    from bgcube.data import DataStore

    store = DataStore.from_dir(shared_data / "hess-dl3-dr1")
    calls = []
    original = lean_fits.read_table_hdu

    def counting(*args, **kwargs):
        table = original(*args, **kwargs)
        calls.append(table is not None)
        return table

    for obs_id in store.obs_ids[::10]:
        path, hdu = store.hdu_location(obs_id, "events")
        monkeypatch.setattr("bgcube.data.observation.read_table_hdu", counting)
        lean = Observation.read(path, obs_id=obs_id, hdu=hdu)
        monkeypatch.undo()
        with monkeypatch.context() as patch:
            patch.setattr("bgcube.data.observation.read_table_hdu", lambda *a, **k: None)
            reference = Observation.read(path, obs_id=obs_id, hdu=hdu)
        _assert_same_observation(lean, reference)
        np.testing.assert_array_equal(lean.events.detx, reference.events.detx)
    assert calls and all(calls)  # every run took the lean path

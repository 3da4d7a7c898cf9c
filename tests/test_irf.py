"""The effective-area condition column: read from each run's AEFF_2D HDU."""

import gzip

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bgcube.binning import EFFECTIVE_AREA_COLUMN
from bgcube.data import DataStore
from bgcube.data.irf import effective_area_at, with_effective_area
from bgcube.errors import FileFormatError
from bgcube.make.joint import condition_table
from bgcube.simulate import make_test_dataset


def _aeff_file(path, energy_major=False, drop=None):
    """An AEFF_2D table whose area is linear in log10(E) and in offset: 1e5 * (2 + lgE) * (3 - t)."""
    e_edges = np.logspace(-1, 2, 13)
    t_edges = np.linspace(0.0, 2.5, 6)
    lg = 0.5 * (np.log10(e_edges[1:]) + np.log10(e_edges[:-1]))
    t = 0.5 * (t_edges[1:] + t_edges[:-1])
    area = 1e5 * (2.0 + lg[None, :]) * (3.0 - t[:, None])  # (offset, energy)
    if energy_major:
        area = area.T
    columns = {
        "ENERG_LO": (e_edges[:-1], "TeV"),
        "ENERG_HI": (e_edges[1:], "TeV"),
        "THETA_LO": (t_edges[:-1], "deg"),
        "THETA_HI": (t_edges[1:], "deg"),
        "EFFAREA": (area, "m2"),
    }
    table = Table()
    for name, (value, unit) in columns.items():
        if name != drop:
            table[name] = u.Quantity(value[None, ...], unit)
    hdu = fits.table_to_hdu(table)
    hdu.name = "AEFF"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


@pytest.mark.parametrize("energy_major", [False, True])
def test_area_interpolated_in_log_energy_and_offset(tmp_path, energy_major):
    path = _aeff_file(tmp_path / "aeff.fits", energy_major)
    area = effective_area_at(path, "AEFF", 1.0 * u.TeV, 0.5 * u.deg)
    assert area.unit == u.m**2
    assert area.value == pytest.approx(1e5 * 2.0 * 2.5, rel=1e-9)
    other = effective_area_at(path, "AEFF", 3000 * u.GeV, 0.9 * u.deg)
    assert other.value == pytest.approx(1e5 * (2.0 + np.log10(3.0)) * 2.1, rel=1e-9)


def test_a_missing_column_names_file_hdu_and_column(tmp_path):
    path = _aeff_file(tmp_path / "bad.fits", drop="THETA_HI")
    with pytest.raises(FileFormatError, match="THETA_HI") as info:
        effective_area_at(path, "AEFF")
    assert "bad.fits" in str(info.value) and "AEFF" in str(info.value)


def test_dr1_runs_get_their_area_and_the_input_table_is_unchanged(shared_data):
    store = DataStore.from_dir(shared_data / "hess-dl3-dr1").select(obs_ids=[23523, 33787])
    before = list(store.obs_table.colnames)
    table = with_effective_area(store, store.obs_table)
    assert list(store.obs_table.colnames) == before
    values = table[EFFECTIVE_AREA_COLUMN].quantity.to_value(u.m**2)
    assert values.shape == (2,) and np.all((values > 1e4) & (values < 1e6))
    assert values[0] != values[1]


def test_runs_without_an_effective_area_leave_the_default_condition_out(tmp_path):
    dataset = make_test_dataset(tmp_path / "data", n_obs=3, random_state=1)
    store = DataStore.from_dir(dataset.path)
    messages = []
    table = condition_table(store, store.obs_table, None, messages)
    assert EFFECTIVE_AREA_COLUMN not in table.colnames
    assert any("no effective area" in m and EFFECTIVE_AREA_COLUMN in m for m in messages)
    # conditions that do not name the column read no IRF at all
    messages = []
    assert condition_table(store, store.obs_table, "ZEN_PNT:cos:2", messages) is store.obs_table
    assert messages == []


def test_default_conditions_need_two_fitted_runs_per_term():
    from bgcube.fit.joint import DEFAULT_CONDITIONS
    from bgcube.make.joint import resolve_conditions

    rng = np.random.default_rng(2)

    def table(n):
        return Table(
            {
                "ZEN_PNT": rng.uniform(5, 50, n),
                "MUONEFF": rng.uniform(0.8, 1.1, n),
                EFFECTIVE_AREA_COLUMN: rng.uniform(1e5, 3e5, n),
            }
        )

    messages = []
    full = resolve_conditions(None, DEFAULT_CONDITIONS, table(12), messages)
    assert [c.column for c in full] == ["ZEN_PNT", "MUONEFF", EFFECTIVE_AREA_COLUMN]
    assert messages == []
    few = resolve_conditions(None, DEFAULT_CONDITIONS, table(10), messages)
    assert [c.column for c in few] == ["ZEN_PNT", "MUONEFF"]
    assert len(messages) == 1 and "10 fitted runs are too few" in messages[0]
    # conditions the user names are kept (the fit then says it has too few runs)
    named = resolve_conditions(
        "ZEN_PNT:cos:2,MUONEFF:log:2,AEFF_1TEV:log:1", DEFAULT_CONDITIONS, table(10)
    )
    assert len(named) == 3


def _lean_off(monkeypatch):
    monkeypatch.setattr("bgcube.data.irf.read_table_hdu", lambda *a, **k: None)


def _lean_calls(monkeypatch):
    """Record whether each read of an AEFF_2D table took the lean reader."""
    from bgcube.data import irf

    calls, original = [], irf.read_table_hdu

    def spy(*args, **kwargs):
        table = original(*args, **kwargs)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(irf, "read_table_hdu", spy)
    return calls


@pytest.mark.parametrize("energy_major", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_lean_read_gives_astropys_values(tmp_path, monkeypatch, energy_major, gzipped):
    path = _aeff_file(tmp_path / "aeff.fits", energy_major)
    if gzipped:
        path = tmp_path / "aeff.fits.gz"
        path.write_bytes(gzip.compress((tmp_path / "aeff.fits").read_bytes()))
    points = [(1.0, 0.5), (0.07, 0.0), (300.0, 3.0), (2.5, 1.3)]
    with monkeypatch.context() as patch:
        calls = _lean_calls(patch)
        lean = [effective_area_at(path, "AEFF", e * u.TeV, t * u.deg) for e, t in points]
    assert calls and all(calls)
    _lean_off(monkeypatch)
    reference = [effective_area_at(path, "AEFF", e * u.TeV, t * u.deg) for e, t in points]
    assert [a.value for a in lean] == [a.value for a in reference]


def test_dr1_areas_read_lean_equal_astropys(shared_data, monkeypatch):
    store = DataStore.from_dir(shared_data / "hess-dl3-dr1")
    with monkeypatch.context() as patch:
        calls = _lean_calls(patch)
        lean = with_effective_area(store, store.obs_table)[EFFECTIVE_AREA_COLUMN]
    assert len(calls) == len(store.obs_ids) and all(calls)  # every run read lean
    _lean_off(monkeypatch)
    reference = with_effective_area(store, store.obs_table)[EFFECTIVE_AREA_COLUMN]
    assert np.array_equal(np.asarray(lean), np.asarray(reference))  # bit for bit
    assert lean.unit == reference.unit


def _patched(path, keyword, value):
    data = bytearray(path.read_bytes())
    at = data.index(f"{keyword:8}= ".encode(), 2880)
    data[at : at + 80] = f"{keyword:8}= {value:20}".ljust(80).encode()
    out = path.with_name("patched.fits.gz")
    out.write_bytes(gzip.compress(bytes(data)))
    return out


@pytest.mark.parametrize(
    "keyword, value, match",
    [
        ("TDIM5", "'(12,6)'", r"EFFAREA of shape \(60,\).*TDIM5 = '\(12,6\)'"),
        ("TDIM5", "'(12,5'", r"EFFAREA of shape \(60,\).*TDIM5 = '\(12,5'"),
        ("TDIM5", "'(6,5)'", r"EFFAREA of shape \(5, 6\).*TDIM5 = '\(6,5\)'"),
        ("TFORM5", "'60Z'", r"column EFFAREA \(TFORM5 = '60Z'\).*no FITS binary-table format"),
        ("TFORM1", "'12X'", r"column ENERG_LO holds bool values \(TFORM1 = '12X'"),
    ],
)
def test_a_malformed_tdim_or_tform_names_file_hdu_and_column(
    tmp_path, monkeypatch, keyword, value, match
):
    import warnings

    path = _patched(_aeff_file(tmp_path / "aeff.fits"), keyword, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's VerifyWarning on the TDIM it ignores
        with pytest.raises(FileFormatError, match=match) as lean:
            effective_area_at(path, "AEFF")
        _lean_off(monkeypatch)
        with pytest.raises(FileFormatError) as reference:
            effective_area_at(path, "AEFF")
    assert "patched.fits.gz" in str(lean.value) and "'AEFF'" in str(lean.value)
    assert str(lean.value) == str(reference.value)  # the same error, whichever reader


def test_a_nan_in_the_table_is_read_as_astropy_reads_it(tmp_path, monkeypatch):
    with fits.open(_aeff_file(tmp_path / "aeff.fits")) as hdus:
        hdus["AEFF"].data["EFFAREA"][0, 0, 0] = np.nan
        hdus.writeto(tmp_path / "nan.fits")
    lean = effective_area_at(tmp_path / "nan.fits", "AEFF", 2 * u.TeV, 1.0 * u.deg)
    _lean_off(monkeypatch)
    reference = effective_area_at(tmp_path / "nan.fits", "AEFF", 2 * u.TeV, 1.0 * u.deg)
    assert lean.value == reference.value


def _edited(path, edit):
    with fits.open(path) as hdus:
        table = Table(hdus["AEFF"].data)
        for name in table.colnames:
            table[name].unit = hdus["AEFF"].columns[name].unit
        table = edit(table)
        hdu = fits.table_to_hdu(table)
        hdu.name = "AEFF"
        out = path.with_name("edited.fits")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out


def _set_unit(table, name, unit):
    table[name].unit = unit
    return table


def _scaled(table, name, factor):
    table[name] = table[name] * factor
    return table


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t[:0], "has no rows"),
        (lambda t: _set_unit(t, "ENERG_LO", "s"), "column ENERG_LO has unit s, expected TeV"),
        (lambda t: _scaled(t, "ENERG_LO", 0.0), "finite and positive"),
        (lambda t: _scaled(t, "THETA_HI", np.nan), "THETA_LO/THETA_HI must be finite"),
        (lambda t: _scaled(t, "EFFAREA", np.inf), "EFFAREA is not finite"),
    ],
)
def test_bad_values_are_named_errors(tmp_path, monkeypatch, edit, match):
    path = _edited(_aeff_file(tmp_path / "aeff.fits"), edit)
    with pytest.raises(FileFormatError, match=match) as lean:
        effective_area_at(path, "AEFF")
    assert "edited.fits" in str(lean.value)
    _lean_off(monkeypatch)
    with pytest.raises(FileFormatError) as reference:
        effective_area_at(path, "AEFF")
    assert str(lean.value) == str(reference.value)

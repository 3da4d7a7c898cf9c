"""``bgcube info`` on the files an astronomer has: DL3 runs, IRF files, bgcube's own files.

Every HDU is listed with its HDUCLAS keywords and size; the background model
is found as `bgcube.FOVCube.read` finds it (an effective area or PSF table on
the same ENERG/THETA axes is not taken for a BKG_2D); a file without one says
so and exits 0.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.describe import NO_BACKGROUND, describe_file
from bgcube.radial import RadialBackground

RATE = u.Unit("1 / (MeV s sr)")


def _cube(scheme="bg_cube", unit=RATE):
    energy = np.geomspace(0.1, 100, 4) * u.TeV
    x = np.linspace(-2, 2, 5) * u.deg
    data = np.arange(48, dtype=float).reshape(3, 4, 4)
    return FOVCube(x, x, energy, data=data * unit, scheme=scheme)


def _aeff_hdu(name="AEFF"):
    """A GADF AEFF_2D table: ENERG_* and THETA_* columns like a BKG_2D, but EFFAREA data."""
    table = Table()
    table["ENERG_LO"] = [[0.1, 1.0]] * u.TeV
    table["ENERG_HI"] = [[1.0, 10.0]] * u.TeV
    table["THETA_LO"] = [[0.0, 1.0, 2.0]] * u.deg
    table["THETA_HI"] = [[1.0, 2.0, 3.0]] * u.deg
    table["EFFAREA"] = np.ones((1, 3, 2)) * u.m**2
    hdu = fits.table_to_hdu(table)
    hdu.header.update(
        EXTNAME=name, HDUCLASS="GADF", HDUCLAS1="RESPONSE", HDUCLAS2="EFF_AREA", HDUCLAS4="AEFF_2D"
    )
    return hdu


def _events_hdu():
    hdu = fits.table_to_hdu(Table({"TIME": np.arange(7.0), "ENERGY": np.ones(7) * u.TeV}))
    hdu.header.update(EXTNAME="EVENTS", HDUCLAS1="EVENTS")
    return hdu


def _dl3_file(path, background=True):
    """A DL3 run file: EVENTS, AEFF (before the background) and, if asked, a BKG_3D named BKG."""
    hdus = [fits.PrimaryHDU(), _events_hdu(), _aeff_hdu()]
    if background:
        bkg = _cube().to_hdulist("table")["BACKGROUND"]
        bkg.name = "BKG"
        hdus.append(bkg)
    fits.HDUList(hdus).writeto(path)
    return path


def test_info_of_a_dl3_run_lists_every_hdu_and_describes_the_background(tmp_path, capsys):
    path = _dl3_file(tmp_path / "run.fits")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  HDU 1 EVENTS: table, 7 rows, 2 columns; HDUCLAS EVENTS" in out
    assert "  HDU 2 AEFF: table, 1 row, 5 columns; HDUCLAS RESPONSE/EFF_AREA/AEFF_2D" in out
    assert "  HDU 3 BKG: table, 1 row, 7 columns; HDUCLAS RESPONSE/BKG/" in out
    assert "background model: HDU BKG (FOVCube.read reads it)" in out
    assert "HDU BKG: cube (energy, DETY, DETX) = (3, 4, 4), unit '1 / (MeV s sr)'" in out
    assert f"sum {np.arange(48).sum():.6g}" in out
    assert FOVCube.read(path).shape == (3, 4, 4)  # the HDU info describes is the one read


def test_info_of_a_file_without_background_lists_its_hdus_and_says_so(tmp_path, capsys):
    path = _dl3_file(tmp_path / "run.fits", background=False)
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "HDU 2 AEFF: table, 1 row" in captured.out
    assert NO_BACKGROUND in captured.out


def test_a_background_found_by_hduclas2_under_another_name(tmp_path):
    hdu = _cube().to_hdulist("table")["BACKGROUND"]
    hdu.name = "BKG_MODEL"
    del hdu.header["HDUCLAS4"]
    fits.HDUList([fits.PrimaryHDU(), _aeff_hdu(), hdu]).writeto(tmp_path / "irf.fits")
    assert "background model: HDU BKG_MODEL" in describe_file(tmp_path / "irf.fits")
    assert FOVCube.read(tmp_path / "irf.fits").shape == (3, 4, 4)


def test_a_bkg_2d_after_an_effective_area_is_found_and_described(tmp_path):
    energy = np.geomspace(0.1, 100, 4) * u.TeV
    offset = np.linspace(0, 2.5, 3) * u.deg
    model = RadialBackground(energy, offset, np.ones((3, 2)) * RATE)
    model.write(tmp_path / "bkg2d.fits")
    with fits.open(tmp_path / "bkg2d.fits") as hdulist:
        hdus = [fits.PrimaryHDU(), _aeff_hdu("EFFECTIVE AREA"), hdulist[1].copy()]
    fits.HDUList(hdus).writeto(tmp_path / "irf.fits")
    assert RadialBackground.read(tmp_path / "irf.fits").shape == (3, 2)
    text = describe_file(tmp_path / "irf.fits")
    assert "background model: HDU BACKGROUND, a BKG_2D" in text
    assert "HDU BACKGROUND: BKG_2D (energy, offset) = (3, 2)" in text
    assert "HDU EFFECTIVE AREA: BKG_2D" not in text


def test_info_describes_an_image_format_file_like_a_table(tmp_path, capsys):
    _cube().write(tmp_path / "m_image.fits.gz", format="image")
    assert main(["info", str(tmp_path / "m_image.fits.gz")]) == 0
    out = capsys.readouterr().out
    assert "  HDU 0 PRIMARY: image (3, 4, 4)" in out and "  HDU 1 EBOUNDS: table" in out
    assert "background model: the image in HDU PRIMARY" in out
    assert "cube (energy, DETY, DETX) = (3, 4, 4), unit '1 / (MeV s sr)'" in out
    assert "energy 0.1 TeV - 100 TeV (log), DETX -2.000 - 2.000 deg" in out
    assert "alignment FOVALIGN=RADEC" in out
    _cube("bg_counts_cube", u.one).write(tmp_path / "c_image.fits", format="image")
    text = describe_file(tmp_path / "c_image.fits")
    assert NO_BACKGROUND in text and "cube (energy, DETY, DETX) = (3, 4, 4), unit ''" in text


@pytest.mark.parametrize(
    ("relpath", "name", "shape"),
    [
        ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz", "BKG", (20, 50, 50)),
        ("cta-1dc/irf_file_South_z20_50h.fits", "BACKGROUND", (21, 36, 36)),
    ],
)
def test_info_of_the_reference_dl3_and_irf_files(shared_data, relpath, name, shape, capsys):
    path = shared_data / relpath
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "EFF_AREA" in out and "EDISP" in out and "RPSF" in out  # every HDU listed
    assert f"background model: HDU {name} (FOVCube.read reads it)" in out
    assert f"HDU {name}: cube (energy, DETY, DETX) = {shape}" in out
    assert FOVCube.read(path).shape == shape


def test_info_says_where_gammapy_overrides_the_alignment_of_a_hess_run(tmp_path):
    """A SASH run's BKG declared RADEC: Gammapy's DataStore attaches it as REVERSE_LON_RADEC."""
    path = _dl3_file(tmp_path / "run.fits")
    assert "Gammapy's DataStore" not in describe_file(path)  # not a SASH run
    with fits.open(path) as hdulist:
        hdulist["EVENTS"].header["CREATOR"] = "SASH FITS::EventListWriter"
        hdulist["EVENTS"].header["HDUVERS"] = "0.2"
        hdulist["BKG"].header["FOVALIGN"] = "RADEC"
        hdulist.writeto(tmp_path / "sash.fits")
    text = describe_file(tmp_path / "sash.fits")
    assert (
        "Gammapy's DataStore attaches it to this H.E.S.S. run as REVERSE_LON_RADEC whatever "
        "FOVALIGN says (as for every run written by SASH): mirrored in DETX against reading "
        "it as RADEC"
    ) in text

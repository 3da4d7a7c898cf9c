"""Bad files give FileFormatError naming the file, the HDU and the problem."""

import astropy.units as u
import numpy as np
import pytest
from _io_helpers import coded_cube, write_bkg
from astropy.io import fits

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.errors import BgcubeError, FileFormatError
from bgcube.io.units import parse_unit


def check_message(excinfo, *parts):
    message = str(excinfo.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_column(tmp_path):
    path = write_bkg(
        tmp_path / "bad.fits",
        coded_cube(),
        order=["DETX_LO", "DETX_HI", "DETY_LO", "ENERG_LO", "ENERG_HI", "BKG"],
    )
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "DETY_LO/DETY_HI", "columns present")
    assert excinfo.value.filename.endswith("bad.fits")
    assert excinfo.value.hdu == "BACKGROUND"


def test_missing_data_column(tmp_path):
    path = write_bkg(tmp_path / "bad.fits", coded_cube(), column="RATE")
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "no data column", "RATE")


def test_edges_of_different_lengths(tmp_path):
    edges = np.linspace(-2, 2, 6)
    short = {"DETX_HI": fits.Column("DETX_HI", "3D", unit="deg", array=edges[None, 1:4])}
    path = write_bkg(tmp_path / "bad.fits", coded_cube(), edge_columns=short)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "'DETX_LO'", "'DETX_HI'", "different lengths")


def test_edges_not_contiguous(tmp_path):
    gap = {"DETY_HI": fits.Column("DETY_HI", "3D", unit="deg", array=np.array([[-1.0, 0.2, 1.5]]))}
    path = write_bkg(tmp_path / "bad.fits", coded_cube(), edge_columns=gap)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "DETY_LO", "not contiguous")


def test_data_size_fits_no_axes(tmp_path):
    cube = coded_cube()
    big = FOVCube(
        np.linspace(-2, 2, 6) * u.deg, cube.coordy_edges, cube.energy_edges, scheme="bg_cube"
    )
    path = write_bkg(
        tmp_path / "bad.fits",
        big,
        edge_columns={
            "DETX_LO": fits.Column("DETX_LO", "4D", unit="deg", array=np.linspace(-2, 1, 4)[None]),
            "DETX_HI": fits.Column("DETX_HI", "4D", unit="deg", array=np.linspace(-1, 2, 4)[None]),
        },
    )
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "'BKG'", "holds 75 values", "= 60")


def test_data_shape_fits_no_axis_order(tmp_path):
    cube = coded_cube()
    path = tmp_path / "bad.fits"
    write_bkg(path, cube)
    with fits.open(path) as hdulist:
        table = hdulist[1]
        data = np.asarray(table.data["BKG"][0]).reshape(NY_NE_NX := (3, 5, 4))  # (y, E, x)
        columns = [c for c in table.columns if c.name != "BKG"]
        columns.append(
            fits.Column("BKG", "60D", unit="MeV-1 s-1 sr-1", dim="(4,5,3)", array=data[None])
        )
        hdu = fits.BinTableHDU.from_columns(columns, name="BACKGROUND", header=table.header)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", str(NY_NE_NX), "fits no known axis order")


def test_unknown_unit(tmp_path):
    path = write_bkg(tmp_path / "bad.fits", coded_cube(), unit="furlong/fortnight**")
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "bad.fits", "BACKGROUND", "column 'BKG'", "'furlong/fortnight**'")


def test_unit_parser_chain():
    assert parse_unit("1 / (s sr TeV)") == u.Unit("1 / (TeV s sr)")
    assert parse_unit("1/s/MeV/sr") == u.Unit("1 / (MeV s sr)")
    assert parse_unit("MeV-1 s-1 sr-1") == u.Unit("1 / (MeV s sr)")
    assert parse_unit("counts") == u.ct
    assert parse_unit("  ") == u.dimensionless_unscaled
    with pytest.raises(FileFormatError, match="'BKG'.*'xyz'"):
        parse_unit("xyz", filename="f.fits", hdu="BKG", column="BKG")


def test_missing_hdu_lists_hdus(tmp_path):
    path = write_bkg(tmp_path / "bad.fits", coded_cube())
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path, hdu="BKG")
    check_message(excinfo, "bad.fits", "no HDU 'BKG'", "PRIMARY", "BACKGROUND")
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path, scheme="bg_counts_cube")
    check_message(excinfo, "bad.fits", "COUNTS", "HDUs present", "BACKGROUND")


def test_multi_row_table(tmp_path):
    path = tmp_path / "rows.fits"
    cube = coded_cube()
    hdu = fits.table_to_hdu(cube.to_table())
    rows = fits.BinTableHDU.from_columns(hdu.columns, nrows=2, name="BACKGROUND")
    fits.HDUList([fits.PrimaryHDU(), rows]).writeto(path)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path)
    check_message(excinfo, "rows.fits", "BACKGROUND", "one-row", "2 rows")


def test_not_fits_and_missing_file(tmp_path):
    path = tmp_path / "text.fits"
    path.write_text("not a FITS file\n")
    with pytest.raises(FileFormatError, match="text.fits"):
        FOVCube.read(path)
    with pytest.raises(FileNotFoundError, match="nowhere.fits"):
        FOVCube.read(tmp_path / "nowhere.fits")


@pytest.mark.parametrize(
    "content", [b"not a FITS file\n", b"", b"x" * 2880], ids=["text", "empty", "2880-bytes"]
)
def test_a_file_that_is_not_fits_says_so(tmp_path, content):
    path = tmp_path / "text.fits"
    path.write_bytes(content)
    for read in (FOVCube.read, FOVCubeBackgroundModel.read):
        with pytest.raises(FileFormatError) as excinfo:
            read(path)
        check_message(excinfo, "text.fits", "not a FITS file", "'SIMPLE  =   T'")
        assert "truncated" not in str(excinfo.value)


def test_an_image_file_read_as_a_table_says_pass_format_image(tmp_path):
    path = tmp_path / "image.fits"
    coded_cube().write(path, format="image")
    for read in (FOVCube.read, FOVCubeBackgroundModel.read):
        with pytest.raises(FileFormatError) as excinfo:
            read(path)
        check_message(excinfo, "image.fits", "image-format cube file", "pass format='image'")
        assert read(path, format="image") is not None


def test_a_home_folder_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cube = coded_cube()
    cube.write("~/cube.fits")
    assert (tmp_path / "cube.fits").exists()
    np.testing.assert_array_equal(FOVCube.read("~/cube.fits").data, cube.data)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing.fits")):
        FOVCube.read("~/missing.fits")


def test_invalid_format(tmp_path):
    with pytest.raises(ValueError, match="invalid format 'csv'"):
        coded_cube().write(tmp_path / "x.fits", format="csv")


BAD_ARGUMENTS = [
    ({"scheme": "foo"}, r"invalid scheme 'foo'; known schemes: \['bg_counts_cube', 'bg_cube', "),
    ({"format": "tab"}, r"invalid format 'tab'; expected one of \('table', 'image'\)"),
    ({"layout": "xyz"}, r"invalid layout 'xyz'; expected one of \['energy-fastest', "),
    ({"backend": "nope"}, r"unknown backend 'nope'; choose one of \['array_api_strict', "),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_a_bad_read_argument_is_refused_before_the_file_is_read(tmp_path, kwargs, message):
    """The argument is named with its valid values; the file (fine or missing) is not blamed."""
    path = tmp_path / "x.fits"
    coded_cube().write(path)
    for target in (path, tmp_path / "missing.fits"):
        with pytest.raises(ValueError, match=message) as excinfo:
            FOVCube.read(target, **kwargs)
        assert not isinstance(excinfo.value, BgcubeError)  # not a FileFormatError
    if "format" in kwargs or "backend" in kwargs:
        with pytest.raises(ValueError, match=message) as excinfo:
            FOVCubeBackgroundModel.read(tmp_path / "missing.fits", **kwargs)
        assert not isinstance(excinfo.value, BgcubeError)


def test_a_bad_scheme_on_the_original_fovcube_file(shared_data):
    path = shared_data / "gammapy-extra-background" / "bg_cube_model_test1.fits"
    with pytest.raises(ValueError, match="invalid scheme 'foo'") as excinfo:
        FOVCube.read(path, format="table", scheme="foo")
    assert "cannot read" not in str(excinfo.value) and str(path) not in str(excinfo.value)
    assert FOVCube.read(path, format="table", scheme="bg_cube").shape == (14, 24, 24)


def test_image_without_ebounds(tmp_path):
    path = tmp_path / "image.fits"
    hdulist = coded_cube().to_hdulist("image")
    del hdulist["EBOUNDS"]
    hdulist.writeto(path)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path, format="image")
    check_message(excinfo, "image.fits", "EBOUNDS", "HDUs present", "DETBOUNDS")


def test_image_planes_mismatch(tmp_path):
    path = tmp_path / "image.fits"
    hdulist = coded_cube().to_hdulist("image")
    hdulist["EBOUNDS"] = fits.BinTableHDU(hdulist["EBOUNDS"].data[:3], name="EBOUNDS")
    hdulist.writeto(path)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCube.read(path, format="image")
    check_message(excinfo, "image.fits", "PRIMARY", "3 energy bins", "5 planes")


def test_model_with_bad_time_keyword(tmp_path):
    path = tmp_path / "model.fits"
    cube = coded_cube()
    cube.meta["BKG_TIME"] = "SOMETIME"
    cube.write(path)
    with pytest.raises(FileFormatError) as excinfo:
        FOVCubeBackgroundModel.read(path)
    check_message(excinfo, "model.fits", "BACKGROUND", "BKG_TIME", "SOMETIME")


def test_errors_are_bgcube_errors(tmp_path):
    path = write_bkg(tmp_path / "bad.fits", coded_cube(), column="RATE")
    with pytest.raises(BgcubeError):
        FOVCube.read(path)
    with pytest.raises(ValueError):
        FOVCube.read(path)

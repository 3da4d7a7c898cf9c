"""What a user sees: library checks, reprs, `bgcube info`, the norm summary, plots.

One test per complaint of a first-time user: the exact call and the clean
result (the error and its text, or the corrected behaviour).
"""

import gzip

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import pytest

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.cli import main
from bgcube.errors import (
    BinningError,
    DataUnitError,
    EventDataError,
    ModelStateError,
    ObservationError,
)
from bgcube.make.pipeline import make_models
from bgcube.plotting import log_axis_errors
from bgcube.simulate.dataset import make_test_dataset

EVENTS = {"ENERGY": [1.5, 2.0] * u.TeV, "DETX": [0.1, -0.5] * u.deg, "DETY": [0.1, 0.3] * u.deg}


def empty_model():
    return FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 5) * u.deg, np.linspace(-2, 2, 5) * u.deg, np.geomspace(1, 10, 3) * u.TeV
    )


# --- library-level nonsense --------------------------------------------------------------


def test_compute_rate_without_time_is_refused():
    model = empty_model().fill_events(EVENTS)
    with pytest.raises(ModelStateError, match=r"time cube is empty: call add_observation_time"):
        model.compute_rate()


def test_smooth_before_compute_rate_is_refused():
    model = empty_model().fill_events(EVENTS)
    model.add_observation_time(30 * u.min)
    with pytest.raises(ModelStateError, match=r"call compute_rate\(\) before smooth\(\)"):
        model.smooth()
    model.compute_rate().smooth(1)  # the right order works
    with pytest.raises(ValueError, match="n_passes must be an integer >= 0, got -1"):
        model.smooth(-1)


def test_smooth_of_a_background_only_model_asks_for_n_passes(shared_data):
    path = shared_data / "gammapy-extra-background" / "bg_cube_model_test1.fits"
    model = FOVCubeBackgroundModel.read(path)
    assert model.counts_cube is None
    with pytest.raises(ModelStateError, match=r"no counts_cube .* smooth\(n_passes=3\)"):
        model.smooth()
    before = model.background_cube.integral_images
    model.smooth(n_passes=3)
    np.testing.assert_allclose(model.background_cube.integral_images, before, rtol=1e-10)


@pytest.mark.parametrize(
    "scheme, unit", [("bg_cube", "m"), ("bg_cube", "s"), ("bg_livetime_cube", "TeV")]
)
def test_cube_units_must_fit_the_scheme(scheme, unit):
    with pytest.raises(DataUnitError, match=f"needs data in a unit convertible to .* got '{unit}'"):
        FOVCube(
            np.linspace(-2, 2, 5) * u.deg,
            np.linspace(-2, 2, 5) * u.deg,
            np.geomspace(1, 10, 3) * u.TeV,
            scheme=scheme,
            unit=unit,
        )
    # equivalent units (and a count factor) are fine
    FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 5) * u.deg,
        np.geomspace(1, 10, 3) * u.TeV,
        scheme="bg_cube",
        unit="ct / (s TeV deg2)",
    )


def test_kept_fraction_of_the_wrong_shape():
    with pytest.raises(
        ObservationError,
        match=r"kept_fraction must have shape \(ny, nx\) = "
        r"\(4, 4\) or \(nE, ny, nx\) = \(2, 4, 4\).*got \(3, 3\)",
    ):
        empty_model().add_observation_time(1 * u.h, kept_fraction=np.ones((3, 3)))


@pytest.mark.parametrize(
    "value, found",
    [(2.0, "values from 2 to 2"), (-0.5, "values from -0.5 to -0.5"), (np.nan, "16 NaN")],
)
def test_kept_fraction_outside_zero_one_is_refused(value, found):
    model = empty_model()
    fraction = np.full((4, 4), value)
    with pytest.raises(ObservationError, match=rf"kept_fraction must lie in \[0, 1\].*got {found}"):
        model.add_observation_time(1 * u.h, kept_fraction=fraction)
    assert float(np.sum(model.livetime_cube.data)) == 0  # nothing added
    model.add_observation_time(1 * u.h, kept_fraction=np.zeros((2, 4, 4), dtype=bool))


def test_model_cubes_must_share_one_binning():
    model = empty_model()
    other = FOVCubeBackgroundModel.set_cube_binning(
        np.linspace(-2, 2, 7) * u.deg, np.linspace(-2, 2, 5) * u.deg, np.geomspace(1, 10, 3) * u.TeV
    )
    with pytest.raises(
        BinningError, match=r"livetime_cube differs from counts_cube in its DETX binning \(6 bins"
    ):
        FOVCubeBackgroundModel(counts_cube=model.counts_cube, livetime_cube=other.livetime_cube)
    with pytest.raises(
        BinningError, match=r"background_cube differs from livetime_cube in its DETX"
    ):
        FOVCubeBackgroundModel(
            livetime_cube=model.livetime_cube, background_cube=other.background_cube
        )
    # a cube reassigned after the model was made is caught before the division
    model.livetime_cube = other.livetime_cube
    with pytest.raises(BinningError, match="livetime_cube differs from counts_cube"):
        model.fill_events(EVENTS).add_observation_time(1 * u.h).compute_rate()


def test_swapped_model_cubes_are_named():
    model = empty_model()
    with pytest.raises(
        DataUnitError,
        match=r"counts_cube holds a cube for livetime_cube \(scheme 'bg_livetime_cube', unit "
        r"'s'\): are the cubes swapped\?",
    ):
        FOVCubeBackgroundModel(counts_cube=model.livetime_cube, livetime_cube=model.counts_cube)
    time = model.livetime_cube.copy()
    time.scheme = None  # no scheme: the unit tells
    with pytest.raises(DataUnitError, match=r"background_cube holds a cube for livetime_cube"):
        FOVCubeBackgroundModel(background_cube=time)
    FOVCubeBackgroundModel(counts_cube=model.counts_cube, livetime_cube=time)  # fits by unit


def test_fill_events_takes_a_dict_of_columns_and_refuses_a_bare_array():
    model = empty_model().fill_events(EVENTS)
    assert float(np.sum(model.counts_cube.data)) == 2
    for bad, shape in ((np.zeros((3, 5)), "(3, 5)"), ([np.zeros(5)], "(5,)")):
        with pytest.raises(
            EventDataError,
            match=r"expects event lists: astropy Tables \(or "
            rf"dicts of arrays\) with ENERGY, DETX and DETY.*shape {re_escape(shape)}",
        ):
            model.fill_events(bad)


def re_escape(text):
    import re

    return re.escape(text)


# --- reprs ---------------------------------------------------------------------------------


def test_reprs_show_ranges_units_totals_and_time():
    model = empty_model()
    text = repr(model)
    assert "energy 1 to 10 TeV, DETX -2 to 2 deg, DETY -2 to 2 deg" in text
    assert "counts=0" in text and "time added (ONTIME, largest per bin)=0 s" in text
    assert "rate=not computed" in text
    model.fill_events(EVENTS).add_observation_time(30 * u.min).compute_rate()
    text = repr(model)
    assert "counts=2" in text and "=1800 s" in text and "rate=computed" in text
    cube = repr(model.background_cube)
    assert "unit='1 / (MeV s sr)'" in cube and "sum=" in cube and "DETX -2 to 2 deg" in cube


# --- bgcube info, the norm summary, the list of written files --------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dataset = make_test_dataset(tmp_path_factory.mktemp("msg") / "data", n_obs=4, random_state=2)
    return dataset


def test_info_shows_time_norm_obs_id_alignment_and_provenance(built, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(built.path),
                str(out),
                "--no-progress",
                "--fit-norm",
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    # the fitted norms as a table, and the files under OUTDIR with their folders
    assert "Per-run norms (fitted to each run's counts" in stdout
    assert "GROUP_ID N_RUNS NORM_MEDIAN NORM_MIN NORM_MAX COUNTS/PREDICTED" in stdout
    assert "file(s) written under" in stdout
    assert "  bkg/" in stdout and "  hdu-index.fits.gz" in stdout
    run_file = sorted((out / "bkg").glob("*.fits*"))[0]
    assert main(["info", str(run_file)]) == 0
    info = capsys.readouterr().out
    assert "time convention BKG_TIME=ONTIME" in info
    assert "run OBS_ID=" in info and "norm BKG_NORM=" in info
    assert "alignment FOVALIGN=" in info and "provenance: HDUCLASS=GADF" in info
    assert main(["info", str(out / "bg_cube_model_group0_table.fits.gz")]) == 0
    info = capsys.readouterr().out
    assert (
        "holds the observation time per bin: ONTIME; the HDU keeps the original name LIVETIME"
    ) in info


def test_efficiency_norm_prints_the_scaling(built, tmp_path, capsys):
    from bgcube.make.report import efficiency_law

    result = make_models(
        built.path, tmp_path / "lib", progress=False, efficiency_column="DEADC", model="groups"
    )
    scale, index, eff_ref = efficiency_law(result.observations)
    for m in result.observations.values():  # every norm follows the printed law
        assert m.norm == pytest.approx(scale * (m.efficiency / eff_ref) ** index, rel=1e-9)
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(built.path),
                str(tmp_path / "cli"),
                "--no-progress",
                "--efficiency-norm",
                "DEADC",
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert (
        f"efficiency scaling: norm = {scale:.4g} * (DEADC / {eff_ref:.4g}) ** {index:.4g}" in stdout
    )


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_a_truncated_file_says_so_once(built, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(built.path, data)
    victim = sorted((data / "data").glob("*.fits*"))[0]
    content = victim.read_bytes()
    victim.write_bytes(content[: len(content) // 2])
    status = main(
        ["make-models", "--model", "groups", str(data), str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert status == 0  # the damaged run is left out, the others are built
    lines = [line for line in err.splitlines() if line.startswith("left out")]
    assert len(lines) == 1
    assert "looks truncated" in lines[0]
    obs = lines[0].split(":")[0].removeprefix("left out ")
    assert lines[0].count(obs + ":") == 1, lines[0]


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_uncompressed_fits(shared_data, tmp_path):
    from bgcube.errors import FileFormatError

    raw = gzip.open(shared_data / "gammapy-extra-background" / "bg_cube_model_test2.fits.gz").read()
    path = tmp_path / "cut.fits"
    path.write_bytes(raw[: 3 * 2880 + 100])
    with pytest.raises(
        FileFormatError,
        match=r"looks truncated \(8740 bytes is not a whole "
        r"number of 2880-byte FITS blocks\)",
    ):
        FOVCubeBackgroundModel.read(path)


# --- plots ---------------------------------------------------------------------------------


def image_cube():
    data = np.ones((2, 4, 4))
    data[0] = 0.0  # an empty energy bin
    data[1, :2] = 0.0  # half an image empty
    return FOVCube(
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 5) * u.deg,
        np.geomspace(1, 10, 3) * u.TeV,
        data=data,
        scheme="bg_counts_cube",
    )


def test_zero_bins_are_masked_not_coloured():
    cube = image_cube()
    ax = cube.plot_image(5 * u.TeV)
    image = ax.images[0].get_array()
    assert np.ma.isMaskedArray(image)
    np.testing.assert_array_equal(np.ma.getmaskarray(image), cube.quantity.value[1] == 0)
    empty = cube.plot_image(1.5 * u.TeV)
    assert np.ma.getmaskarray(empty.images[0].get_array()).all()
    assert empty.images[0].colorbar is None  # no -0.1..0.1 colour bar for nothing
    assert "all bins zero" in empty.texts[0].get_text()
    plt.close("all")


def test_log_axis_error_bars_stay_above_zero():
    values = np.array([1.0, 4.0, 100.0])
    errors = np.array([1.0, 2.0, 150.0])  # a lower end at 0 and one below 0
    lower, upper = log_axis_errors(values, errors)
    assert np.all(values - lower > 0)
    np.testing.assert_allclose(values - lower, [0.1, 2.0, 10.0])
    np.testing.assert_array_equal(upper, errors)


def test_legends_are_outside_the_data(shared_data):
    model = FOVCubeBackgroundModel.read(
        shared_data / "gammapy-extra-background" / "bg_cube_model_test2.fits.gz"
    )
    figure = model.peek()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    for legend in legends:
        box = legend.get_window_extent(renderer)
        frame = legend.axes.get_window_extent(renderer)
        assert box.x0 >= frame.x1  # right of the plotting area: it covers no curve
    plt.close(figure)


def test_one_unit_style_in_labels(shared_data):
    model = FOVCubeBackgroundModel.read(
        shared_data / "gammapy-extra-background" / "bg_cube_model_test2.fits.gz"
    )
    figure = model.peek()
    labels = [t for ax in figure.axes for t in (ax.get_xlabel(), ax.get_ylabel()) if t]
    assert any("[deg]" in t for t in labels)
    assert not [t for t in labels if "(deg)" in t or "(TeV)" in t or "(s)" in t]
    plt.close(figure)


def test_axis_labels_in_the_sources_use_one_unit_style():
    """Labels say 'name [unit]' (as bgcube.plotting does), never 'name (unit)'."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"label[^\n]*\((deg|TeV|GeV|MeV|s|h|sr|rad)\)[\"']")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("bgcube", "examples", "docs")
        for path in sorted((root / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"labels with '(unit)' instead of '[unit]': {offenders}"


def test_a_file_given_where_a_folder_is_expected(built, tmp_path, capsys):
    """The index or model file named instead of its folder: the message says which."""
    index = built.path / "hdu-index.fits.gz"
    status = main(["make-models", str(index), str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert status != 0
    assert f"data store folder {str(index)!r} is a file" in err
    assert "hdu-index.fits.gz and obs-index.fits.gz" in err
    assert "Traceback" not in err
    model_file = tmp_path / "bg_joint_model.fits.gz"
    model_file.write_bytes(b"")
    status = main(["apply-models", str(model_file), str(built.path), str(tmp_path / "applied")])
    err = capsys.readouterr().err
    assert status != 0
    assert f"model folder {str(model_file)!r} is a file" in err
    assert "bg_joint_model.fits.gz or bg_observation_groups.ecsv" in err
    assert not (tmp_path / "applied").exists()

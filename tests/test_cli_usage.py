"""Usage errors and help of the command: one line, the options named as typed, grouped help.

A build option that does not go with the model built is refused before any
work, naming the command-line flags typed (``--smooth-passes``) and saying
how to fix it (``add --model groups``) from the command, and the keywords
(``smooth``, ``model='groups'``) from Python; argparse's errors are one line
said by the sub-command's own parser; ``make-models --help`` groups the
options by the model they apply to.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from bgcube.cli import build_parser, main
from bgcube.make import make_models
from bgcube.make.config import BuildConfig
from bgcube.make.option_text import OptionError, OptionText
from bgcube.simulate.dataset import make_test_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("usage") / "data", n_obs=4, random_state=3)


def run_main(capsys, *argv):
    """``main(argv)`` -> (status, stderr); argparse's errors raise SystemExit."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


def assert_one_line(err):
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


# --- options that do not go with the model built ----------------------------------


@pytest.mark.parametrize(
    "options, named, internal",
    [
        (["--smooth-passes", "2"], "--smooth-passes only applies", "error: smooth"),
        (["--no-smooth"], "--no-smooth only applies", "error: smooth"),
        (["--fit-norm"], "--fit-norm only applies", "per_observation"),
        (["--efficiency-norm", "NOPE"], "--efficiency-norm only applies", "efficiency_column"),
        (["--zenith-edges", "0,30,60"], "--zenith-edges only applies", "zenith_edges"),
        (["--per-observation", "group"], "--per-observation group only applies", "per_obs"),
        (
            ["--alignment", "ALTAZ", "--time", "LIVETIME"],
            "--alignment ALTAZ and --time LIVETIME only apply",
            "time_convention",
        ),
    ],
)
def test_group_options_with_the_joint_model_name_the_flags(
    dataset, tmp_path, capsys, options, named, internal
):
    out = tmp_path / "out"
    status, err = run_main(capsys, "make-models", dataset.path, out, "--no-progress", *options)
    assert status == 2, err
    assert_one_line(err)
    assert named in err and "to the group models: add --model groups" in err
    assert internal not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "options, named",
    [
        (["--fit-glat-min", "20"], "--fit-glat-min only applies"),
        (["--night-sigma", "0.3"], "--night-sigma only applies"),
        (["--conditions", "ZEN_PNT", "--run-sigma", "0"], "--conditions and --run-sigma only"),
        (["--no-extrapolate"], "--no-extrapolate only applies"),
    ],
)
def test_joint_options_with_the_group_models_are_refused(dataset, tmp_path, capsys, options, named):
    """Every joint-model option, --fit-glat-min included, is an error with --model groups."""
    out = tmp_path / "out"
    argv = ["make-models", dataset.path, out, "--model", "groups", "--no-progress", *options]
    status, err = run_main(capsys, *argv)
    assert status == 2, err
    assert_one_line(err)
    assert named in err and "to the joint model (--model joint, the default)" in err
    assert "fit_glat_min" not in err and "night_sigma" not in err
    assert not out.exists()


def test_python_names_the_keywords(dataset, tmp_path):
    with pytest.raises(OptionError) as info:
        make_models(dataset.path, tmp_path / "a", smooth=1, fit_norm=True, progress=False)
    assert str(info.value) == (
        "smooth and fit_norm only apply to the group models: pass model='groups' "
        "(the joint model, the default, has no k5a smoothing, writes a model per run by itself)"
    )
    with pytest.raises(OptionError, match=r"^fit_glat_min only applies to the joint model"):
        make_models(dataset.path, tmp_path / "b", model="groups", fit_glat_min=20.0)
    with pytest.raises(OptionError, match="leave it out with model='groups'"):
        make_models(dataset.path, tmp_path / "b", model="groups", fit_glat_min=10.0)
    with pytest.raises(OptionError, match="fit_norm and efficiency_column are alternatives"):
        make_models(
            dataset.path, tmp_path / "c", model="groups", fit_norm=True, efficiency_column="X"
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_option_from_the_config_file_is_named_by_its_key(dataset, tmp_path, capsys):
    config = tmp_path / "build.yaml"
    config.write_text("smoothing:\n  smooth: 1\n")
    status, err = run_main(capsys, "make-models", dataset.path, tmp_path / "o", "--config", config)
    assert status == 2
    assert_one_line(err)
    assert f"smoothing.smooth in {config} only applies to the group models" in err


def test_a_note_names_the_flag():
    from bgcube.cli_usage import command_line_text

    note = OptionText("fitted to all runs ({verb} {0} to say so)", ("fit_glat_min", 0.0))
    assert note == "fitted to all runs (pass fit_glat_min=0 to say so)"
    parser = build_parser()
    args = parser.parse_args(["make-models", "in", "out"])
    assert (
        command_line_text(note, parser, args)
        == "fitted to all runs (add --fit-glat-min 0 to say so)"
    )
    assert command_line_text("plain text", parser, args) == "plain text"


def test_group_models_record_no_joint_options(dataset, tmp_path, capsys):
    """--per-observation none is accepted; a group build records no fit_glat_min."""
    import yaml

    out = tmp_path / "groups"
    argv = ["make-models", dataset.path, out, "--model", "groups", "--no-progress"]
    assert main([*map(str, argv), "--per-observation", "none"]) == 0, capsys.readouterr().err
    assert not (out / "bkg").exists()
    config = yaml.safe_load((out / "bgcube-config.yaml").read_text())
    assert config["model"]["fit_glat_min"] is None
    assert config["per_observation"]["per_observation"] == "none"
    again = BuildConfig.read(out / "bgcube-config.yaml")  # the file repeats the build
    assert again.fit_glat_min is None and again.per_observation == "none"


# --- argparse's errors: one line, by the sub-command ----------------------------------


@pytest.mark.parametrize(
    "argv, start",
    [
        (
            ["make-models", "a", "b", "--backend", "torch"],
            "bgcube make-models: error: argument --backend: invalid choice: 'torch'",
        ),
        (
            ["make-models", "a", "b", "--bogus"],
            "bgcube make-models: error: unrecognized arguments: --bogus",
        ),
        (["make-models", "a", "b", "c"], "bgcube make-models: error: unrecognized arguments: c"),
        (["info"], "bgcube info: error: the following arguments are required: FILE"),
        (["demo", "x", "--n-obs", "many"], "bgcube demo: error: argument --n-obs: invalid int"),
        ([], "bgcube: error: the following arguments are required: COMMAND"),
        (["nope"], "bgcube: error: argument COMMAND: invalid choice: 'nope'"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, start):
    status, err = run_main(capsys, *argv)
    assert status == 2
    assert_one_line(err)
    assert err.startswith(start), err
    prog = start.split(": error")[0]
    assert err.rstrip().endswith(f"(see '{prog} --help')")


def test_a_real_usage_error_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "bgcube", "make-models", "a", "b", "--backend", "torch"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert_one_line(result.stderr)
    assert "usage:" not in result.stderr


@pytest.mark.parametrize(
    "typed, read",
    [
        (["--azimuth-edges", "-90,90,270"], {"azimuth_edges": [-90.0, 90.0, 270.0]}),
        (["--zenith-edges", "-10,20"], {"zenith_edges": [-10.0, 20.0]}),
        (["--azimuth-edges=-90,90,270"], {"azimuth_edges": [-90.0, 90.0, 270.0]}),
        (["--azim", "-.5,90"], {"azimuth_edges": [-0.5, 90.0]}),  # an abbreviation
        (
            ["--zenith-edges", "-5,30", "--azimuth-edges", "-90,90"],
            {"zenith_edges": [-5.0, 30.0], "azimuth_edges": [-90.0, 90.0]},
        ),
    ],
)
def test_a_list_of_numbers_may_start_with_a_minus(typed, read):
    args = build_parser().parse_args(["make-models", "--model", "groups", "a", "b", *typed])
    assert {k: getattr(args, k) for k in read} == read
    assert (args.indir, args.outdir) == ("a", "b")


def test_the_help_example_of_azimuth_edges_builds(dataset, tmp_path, capsys):
    """The help's example, -90,90,270, and a negative zenith edge (refused for its value)."""
    out = tmp_path / "out"
    argv = ["make-models", "--model", "groups", dataset.path, out, "--no-progress"]
    status, err = run_main(capsys, *argv, "--azimuth-edges", "-90,90,270")
    assert status == 0, err
    assert (
        "azimuth_edges:\n  - -90.0\n  - 90.0\n  - 270.0" in (out / "bgcube-config.yaml").read_text()
    )
    status, err = run_main(capsys, *argv[:-2], tmp_path / "z", "--zenith-edges", "-10,20,70")
    assert status == 2 and "zenith edges must lie in [0, 180] deg" in err, err
    assert_one_line(err)
    status, err = run_main(capsys, *argv[:-2], tmp_path / "z", "--azimuth-edges")
    assert status == 2 and "argument --azimuth-edges: expected one argument" in err


# --- help -------------------------------------------------------------------------


def help_text(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def sections(text: str) -> dict:
    """Help heading -> the options listed under it."""
    out, heading = {}, None
    for line in text[text.index("\npositional arguments:") :].splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            heading = line[:-1]
            out[heading] = []
        elif heading and line.startswith("  -"):
            out[heading].append(line.split()[0].rstrip(","))
    return out


def test_make_models_help_groups_the_options_by_model(capsys):
    groups = sections(help_text(capsys, "make-models"))
    assert set(groups) == {
        "positional arguments",
        "general options",
        "joint model (the default)",
        "group models (--model groups only)",
    }
    assert "--model" in groups["general options"] and "--select" in groups["general options"]
    assert groups["joint model (the default)"] == [
        "--conditions",
        "--spatial-conditions",
        "--fit-glat-min",
        "--extrapolate",
        "--night-sigma",
        "--run-sigma",
    ]
    group_only = {
        "--method",
        "--zenith-edges",
        "--azimuth-edges",
        "--min-observations",
        "--no-smooth",
        "--smooth-passes",
        "--per-observation",
        "--fit-norm",
        "--efficiency-norm",
        "--model-type",
        "--time",
        "--alignment",
    }
    assert set(groups["group models (--model groups only)"]) == group_only


def test_help_texts_say_what_they_mean(capsys):
    text = " ".join(help_text(capsys, "make-models").split())
    assert "(default: default)" not in text and "'default', 0.1-100 TeV (the default)" in text
    assert "BGCUBE_RUN_CHAIN" not in text
    assert "a column alone, e.g. ZEN_PNT, is ZEN_PNT:cos:1" in text
    assert "[INDIR] [OUTDIR]" in text and "INDIR data set folder" in text
    assert "`DATE-OBS`" in text
    top = " ".join(help_text(capsys).split())
    assert "validate" not in top and "describe their files" in top
    demo = " ".join(help_text(capsys, "demo").split())
    assert "--n-obs N" in demo and "--seed N" in demo and "N_OBS" not in demo
    info = " ".join(help_text(capsys, "info").split())
    assert "FILE a FITS file" in info
    apply = " ".join(help_text(capsys, "apply-models").split())
    assert "MODELDIR INDIR OUTDIR" in apply


def test_the_help_says_what_overwrite_removes_and_how_config_takes_the_folders(capsys):
    removed = (
        "also remove the files an earlier bgcube command wrote there and this one does not "
        "(models, hdu-index and obs-index, bkg/bkg_obs_*.fits.gz, input files copied into data/"
    )
    build = " ".join(help_text(capsys, "make-models").split())
    assert removed in build and "discard the checkpoint of an unfinished build" in build
    assert "'make-models --config FILE NEWOUT' builds the file's INDIR into NEWOUT" in build
    assert "a single folder given is then OUTDIR" in build
    assert removed + ", bgcube-config.yaml" in " ".join(help_text(capsys, "apply-models").split())
    demo = " ".join(help_text(capsys, "demo").split())
    assert "never a data store" in demo and "write into an OUTDIR that holds files" in demo

"""One build configuration: BuildConfig, its YAML round trip and ``make-models --config``."""

import dataclasses
import gzip
import inspect
from pathlib import Path

import astropy.units as u
import pytest

from bgcube.cli import main
from bgcube.errors import FileFormatError
from bgcube.make import make_models
from bgcube.make.config import CONFIG_NAME, BuildConfig
from bgcube.simulate import make_test_dataset

#: make_models keywords that only the Python API takes (not YAML-able objects), and
#: the config itself.
PYTHON_ONLY = {"min_time", "config"}


def test_every_make_models_keyword_is_a_field_with_its_default():
    fields = {f.name: f for f in dataclasses.fields(BuildConfig)}
    config = BuildConfig()
    for name, parameter in inspect.signature(make_models).parameters.items():
        if name in PYTHON_ONLY:
            continue
        assert name in fields, (
            f"make_models({name}=...) has no BuildConfig field: add one line to "
            "bgcube/make/config.py"
        )
        if parameter.default is not inspect.Parameter.empty:
            assert getattr(config, name) == parameter.default, name


def test_yaml_round_trip(tmp_path):
    config = BuildConfig(
        indir=str(tmp_path / "in"),
        outdir=str(tmp_path / "out"),
        zenith_edges=(0.0, 35.5, 70.0),
        smooth=2,
        per_observation="group",
        fit_norm=True,
        select="ZEN_PNT < 40",
        workers=2,
    )
    path = tmp_path / "c.yaml"
    config.write(path)
    back = BuildConfig.read(path)
    assert back == config
    with pytest.raises(FileExistsError):
        config.write(path)


def test_unknown_or_misplaced_options_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("binning:\n  zenith_edges: [0, 10]\n")
    with pytest.raises(FileFormatError, match="belongs in section 'grouping'"):
        BuildConfig.read(path)
    path.write_text("grouping:\n  zenith_bins: [0, 10]\n")
    with pytest.raises(FileFormatError, match="unknown build option grouping.zenith_bins"):
        BuildConfig.read(path)
    path.write_text("grouping: [unclosed\n")
    with pytest.raises(FileFormatError, match="not a YAML file"):
        BuildConfig.read(path)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return make_test_dataset(
        tmp_path_factory.mktemp("small"), n_obs=3, random_state=7, alt_range=(60, 80) * u.deg
    )


def _contents(folder):
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != CONFIG_NAME:
            data = path.read_bytes()
            out[path.relative_to(folder).as_posix()] = (
                gzip.decompress(data) if path.suffix == ".gz" else data
            )
    return out


def test_config_file_repeats_the_build(small_dataset, tmp_path):
    first = tmp_path / "first"
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(small_dataset.path),
                str(first),
                "--no-progress",
                "--exclusion",
                "none",
                "--zenith-edges",
                "0,25,50",
                "--smooth-passes",
                "2",
            ]
        )
        == 0
    )
    config = BuildConfig.read(first / CONFIG_NAME)
    assert config.zenith_edges == (0.0, 25.0, 50.0) and config.smooth == 2
    assert config.exclusion == "none" and config.outdir == str(first.resolve())
    # the same build from the file alone, into another folder (an option given here wins)
    again = tmp_path / "again"
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                "--config",
                str(first / CONFIG_NAME),
                str(small_dataset.path),
                str(again),
                "--no-progress",
            ]
        )
        == 0
    )
    assert _contents(again) == _contents(first)
    assert BuildConfig.read(again / CONFIG_NAME).outdir == str(again.resolve())
    # the file alone repeats the build in place
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                "--config",
                str(first / CONFIG_NAME),
                "--overwrite",
                "--no-progress",
            ]
        )
        == 0
    )
    assert _contents(first) == _contents(again)
    # an option on the command line changes the build
    other = tmp_path / "other"
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                "--config",
                str(first / CONFIG_NAME),
                str(small_dataset.path),
                str(other),
                "--no-progress",
                "--no-smooth",
            ]
        )
        == 0
    )
    assert BuildConfig.read(other / CONFIG_NAME).smooth is False
    assert _contents(other) != _contents(first)


def test_one_folder_after_a_config_is_the_output_folder(small_dataset, tmp_path, capsys):
    """``--config FILE NEWOUT`` builds the file's INDIR into NEWOUT; INDIR is never written."""
    first = tmp_path / "first"
    argv = ["make-models", "--model", "groups", "--no-progress", "--exclusion", "none"]
    assert main([*argv, str(small_dataset.path), str(first)]) == 0
    before = _contents(Path(small_dataset.path))
    new = tmp_path / "new"
    assert main([*argv, "--config", str(first / CONFIG_NAME), str(new)]) == 0, (
        capsys.readouterr().err
    )
    assert _contents(new) == _contents(first)
    config = BuildConfig.read(new / CONFIG_NAME)
    assert (config.indir, config.outdir) == (
        str(Path(small_dataset.path).resolve()),
        str(new.resolve()),
    )
    # the one folder is checked as OUTDIR: not inside the input, not over existing files
    inside = Path(small_dataset.path) / "out"
    assert main([*argv, "--config", str(first / CONFIG_NAME), str(inside)]) == 1
    assert "lies inside the input data folder" in capsys.readouterr().err
    assert main([*argv, "--config", str(first / CONFIG_NAME), str(new)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert _contents(Path(small_dataset.path)) == before and not inside.exists()
    template = tmp_path / "template.yaml"  # a file naming no folders
    template.write_text("grouping:\n  min_observations: 1\n")
    assert main([*argv, "--config", str(template), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "names no input folder (indir): give INDIR OUTDIR" in err


def test_folders_are_required_without_a_config(capsys):
    assert main(["make-models", "--model", "groups", "--no-progress"]) == 2
    assert "needs INDIR and OUTDIR" in capsys.readouterr().err


def test_make_models_takes_a_config_and_keywords_override_it(small_dataset, tmp_path):
    options = dict(model="groups", exclusion="none", zenith_edges=(0.0, 25.0, 50.0), smooth=2)
    by_keywords = make_models(small_dataset.path, tmp_path / "keywords", progress=False, **options)
    config = BuildConfig(
        indir=str(small_dataset.path), outdir=str(tmp_path / "config"), progress=False, **options
    )
    by_config = make_models(config=config)
    assert _contents(tmp_path / "config") == _contents(tmp_path / "keywords")
    assert [g.obs_ids for g in by_config.groups] == [g.obs_ids for g in by_keywords.groups]
    assert not (tmp_path / "config" / CONFIG_NAME).exists()  # make_models writes no config
    # a keyword given with another value than its default wins over the config
    other = make_models(config=config, outdir=tmp_path / "other", smooth=False)
    assert _contents(tmp_path / "other") != _contents(tmp_path / "config")
    assert other.groups[0].model is not None and config.smooth == 2
    with pytest.raises(ValueError, match="needs an input folder"):
        make_models(config=BuildConfig(outdir=str(tmp_path / "x")))
    with pytest.raises(TypeError, match="BuildConfig"):
        make_models(small_dataset.path, tmp_path / "y", config={"model": "groups"})

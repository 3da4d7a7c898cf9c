"""Every value of a build configuration file is checked when read, and a bad one is named
with its file and key: never an internal error, never a message without the file."""

import dataclasses

import pytest
import yaml

from bgcube.cli import main
from bgcube.errors import FileFormatError
from bgcube.make.config import BuildConfig
from bgcube.make.config_schema import _schema


def _write(path, section, key, value):
    config = BuildConfig(indir="in", outdir="out").to_dict()
    config.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_every_field_has_a_check():
    assert set(_schema()) == {f.name for f in dataclasses.fields(BuildConfig)}


def test_a_written_config_reads_back_unchanged(tmp_path):
    config = BuildConfig(
        indir=str(tmp_path / "in"),
        outdir=str(tmp_path / "out"),
        obs_ids="23523,23526",
        exclude_obs_ids=[1, 2],
        conditions=("ZEN_PNT:cos:2", "MUONEFF:log:1"),
        spatial_conditions=(),
        fit_glat_min=0.0,
        night_sigma=0.2,
        run_sigma=0.0,
        zenith_edges=(0.0, 35.5, 70.0),
        azimuth_edges=(-90.0, 90.0, 270.0),
        min_observations=2,
        smooth=0,
        per_observation="interpolate",
        efficiency_column="MUONEFF",
        backend="jax",
        workers=3,
        keep_checkpoint=True,
    )
    config.write(tmp_path / "c.yaml")
    assert BuildConfig.read(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        (
            "model",
            "night_sigma",
            "abc",
            "expected 0 (none) or a number between 0.001 and 10, got 'abc'",
        ),
        ("model", "night_sigma", -1, "expected 0 (none) or a number between 0.001 and 10, got -1"),
        (
            "model",
            "run_sigma",
            [0.1],
            "expected 0 (none) or a number between 0.001 and 10, got [0.1]",
        ),
        (
            "model",
            "night_sigma",
            float("inf"),
            "expected 0 (none) or a number between 0.001 and 10, got inf",
        ),
        (
            "model",
            "run_sigma",
            1e-300,
            "expected 0 (none) or a number between 0.001 and 10, got 1e-300",
        ),
        (
            "model",
            "run_sigma",
            1e4,
            "expected 0 (none) or a number between 0.001 and 10, got 10000.0",
        ),
        ("model", "fit_glat_min", 95, "expected a number between 0 and 90, got 95"),
        ("model", "fit_glat_min", True, "expected a number between 0 and 90, got True"),
        ("model", "model", "group", "expected one of 'joint', 'groups', got 'group'"),
        ("model", "conditions", "ZEN_PNT:sin:2", "'ZEN_PNT:sin:2': condition transform"),
        ("model", "conditions", [1, 2], "expected a list of conditions"),
        ("grouping", "zenith_edges", "0,20,40", "expected a list of numbers"),
        ("grouping", "zenith_edges", [0, "a"], "expected a list of numbers"),
        ("grouping", "zenith_edges", [40, 20], "zenith edges must be >= 2 increasing values"),
        ("grouping", "min_observations", 1.5, "expected an integer >= 1, got 1.5"),
        ("selection", "test", "yes please", "expected true or false, got 'yes please'"),
        ("selection", "obs_ids", [1, "x"], "expected run ids"),
        ("selection", "select", 3, "expected a text, got 3"),
        ("smoothing", "smooth", -2, "expected true, false or a number of smoothing passes"),
        ("execution", "workers", 0, "expected an integer >= 1, got 0"),
        ("execution", "backend", "torch", "expected one of 'numpy'"),
        ("binning", "alignment", "radec", "expected one of 'RADEC', 'ALTAZ', got 'radec'"),
        ("time", "time_convention", "LIVE", "expected one of 'ONTIME', 'LIVETIME'"),
        ("outputs", "input_paths", "abs", "expected one of 'relative'"),
    ],
)
def test_a_bad_value_names_the_file_and_the_key(tmp_path, section, key, value, expected):
    path = _write(tmp_path / "c4.yaml", section, key, value)
    with pytest.raises(FileFormatError) as info:
        BuildConfig.read(path)
    message = str(info.value)
    assert message.startswith(f"config file {str(path)!r}, key {key!r}: "), message
    assert expected in message
    assert info.value.filename == str(path)


def test_the_command_says_it_in_one_line(tmp_path, capsys):
    path = _write(tmp_path / "c4.yaml", "model", "night_sigma", "abc")
    assert main(["make-models", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"bgcube make-models: error: config file {str(path)!r}, key 'night_sigma': "
        "expected 0 (none) or a number between 0.001 and 10, got 'abc'\n"
    )
    assert not (tmp_path / "out").exists()


def test_values_are_taken_as_the_build_takes_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "selection:\n  obs_ids: 23523\nmodel:\n  spatial_conditions: none\n"
        "  conditions: ZEN_PNT:cos:2,MUONEFF\n  night_sigma: 1\n"
        "grouping:\n  zenith_edges: [0, 30, 60]\n  min_observations: 2.0\n"
    )
    config = BuildConfig.read(path)
    assert config.obs_ids == [23523] and config.spatial_conditions == ()
    assert config.conditions == ("ZEN_PNT:cos:2", "MUONEFF")
    assert config.night_sigma == 1.0 and isinstance(config.night_sigma, float)
    assert config.zenith_edges == (0.0, 30.0, 60.0) and config.min_observations == 2

"""One build described by one object: `BuildConfig`, with a YAML round trip.

``bgcube make-models`` fills a `BuildConfig` from its options (or from
``--config FILE.yaml``, options given on the command line winning), runs it,
and writes it next to the models as ``OUTDIR/bgcube-config.yaml``, so that

    bgcube make-models --config OUTDIR/bgcube-config.yaml --overwrite

repeats the build exactly. The file groups the fields in sections (input,
selection, model, binning, grouping, exclusion, time, smoothing, per_observation,
outputs, execution); a field is one line of `BuildConfig`, so a new
``make_models`` keyword is one new line here (and its command-line option,
whose ``dest`` is the field's name).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileFormatError

__all__ = [
    "BuildConfig",
    "CONFIG_NAME",
    "SECTIONS",
    "DEFAULT_ZENITH_EDGES",
    "DEFAULT_AZIMUTH_EDGES",
    "MODEL_KINDS",
    "resolve_exclusion",
    "FIELD_OF_DEST",
]

#: Zenith bins of the observation groups, deg.
DEFAULT_ZENITH_EDGES = (0.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)
#: Azimuth bins of the observation groups, deg (one bin: all azimuths).
DEFAULT_AZIMUTH_EDGES = (0.0, 360.0)
#: What make_models builds: one joint model (default) or the original group models.
MODEL_KINDS = ("joint", "groups")

#: Name of the provenance file written into every output folder.
CONFIG_NAME = "bgcube-config.yaml"

#: Sections of the YAML file, in the order written.
SECTIONS = (
    "input",
    "selection",
    "model",
    "binning",
    "grouping",
    "exclusion",
    "time",
    "smoothing",
    "per_observation",
    "outputs",
    "execution",
)


def _field(section: str, default: Any = None, *, provenance: bool = True):
    """A `BuildConfig` field: its YAML section, its default, whether it is written.

    ``provenance=False`` marks choices about one invocation (replace files,
    resume, progress bar) rather than about the build; they are not written
    to ``bgcube-config.yaml``.
    """
    if isinstance(default, list | tuple):
        value = tuple(default)
        return field(
            default_factory=lambda: value, metadata={"section": section, "provenance": provenance}
        )
    return field(default=default, metadata={"section": section, "provenance": provenance})


@dataclass
class BuildConfig:
    """Everything that defines a ``make-models`` build (see `bgcube.make.make_models`).

    Each field is a keyword of `~bgcube.make.make_models` (plus ``indir``
    and ``outdir``), with the same meaning and default.
    """

    indir: str | None = _field("input")
    test: bool = _field("selection", False)
    obs_ids: Any = _field("selection")
    exclude_obs_ids: Any = _field("selection")
    select: str | None = _field("selection")
    model: str = _field("model", "joint")
    conditions: Any = _field("model")
    spatial_conditions: Any = _field("model")
    fit_glat_min: float | None = _field("model")
    night_sigma: float | None = _field("model")
    run_sigma: float | None = _field("model")
    method: str = _field("binning", "default")
    alignment: str = _field("binning", "RADEC")
    model_type: str = _field("binning", "3d")
    zenith_edges: tuple = _field("grouping", DEFAULT_ZENITH_EDGES)
    azimuth_edges: tuple = _field("grouping", DEFAULT_AZIMUTH_EDGES)
    min_observations: int = _field("grouping", 1)
    exclusion: str = _field("exclusion", "auto")
    time_convention: str = _field("time", "ONTIME")
    smooth: bool | int = _field("smoothing", True)
    per_observation: str | None = _field("per_observation")
    fit_norm: bool = _field("per_observation", False)
    efficiency_column: str | None = _field("per_observation")
    outdir: str | None = _field("outputs")
    input_paths: str = _field("outputs", "relative")
    extrapolate: bool = _field("outputs", True)
    overwrite: bool = _field("outputs", False, provenance=False)
    backend: str = _field("execution", "numpy")
    fail_fast: bool = _field("execution", False)
    scheduler: str | None = _field("execution")
    workers: int | None = _field("execution")
    resume: bool = _field("execution", False, provenance=False)
    keep_checkpoint: bool = _field("execution", False)
    progress: bool | None = _field("execution", provenance=False)

    # ------------------------------------------------------------------
    def make_models_kwargs(self) -> dict:
        """The keyword arguments of `~bgcube.make.make_models` (all but indir, outdir)."""
        kwargs = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("indir", "outdir")
        }
        kwargs["zenith_edges"] = tuple(self.zenith_edges)
        kwargs["azimuth_edges"] = tuple(self.azimuth_edges)
        return kwargs

    def run(self, *, write_config: bool = True):
        """Run the build; by default also write ``OUTDIR/bgcube-config.yaml``.

        Returns
        -------
        result : `~bgcube.make.MakeModelsResult`
        """
        from ..io.atomic import check_writable
        from .pipeline import make_models

        if self.indir is None or self.outdir is None:
            raise ValueError("a build needs an input folder (indir) and an output folder (outdir)")
        target = Path(self.outdir) / CONFIG_NAME
        if write_config:  # fail before the work, not after
            check_writable(target, self.overwrite or self.resume)
        result = make_models(self.indir, self.outdir, **self.make_models_kwargs())
        if write_config:
            self.write(target, overwrite=True)
            result.files.append(target)
        return result

    def with_options(self, options: dict, defaults: dict) -> BuildConfig:
        """A copy with the ``options`` whose values differ from their ``defaults``.

        What ``make_models(config=..., **keywords)`` does with its keywords,
        as ``make-models --config FILE`` does with the options given on the
        command line.

        Parameters
        ----------
        options : dict
            Field name -> value.
        defaults : dict
            Field name -> the value that means "not given".

        Returns
        -------
        config : BuildConfig
        """
        given = {k: v for k, v in options.items() if _differs(v, defaults.get(k))}
        return dataclasses.replace(self, **given)

    # ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The provenance fields as ``{section: {name: value}}`` (plain YAML types)."""
        out = {s: {} for s in SECTIONS}
        for f in dataclasses.fields(self):
            if not f.metadata["provenance"]:
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [v if isinstance(v, str) else float(v) for v in value]
            elif f.name in ("indir", "outdir") and value is not None:
                value = str(Path(value).expanduser().resolve())
            elif f.name == "exclusion" and value not in ("auto", "none") and value is not None:
                value = str(Path(value).expanduser().resolve())
            out[f.metadata["section"]][f.name] = value
        return {s: v for s, v in out.items() if v}

    @classmethod
    def from_dict(cls, data: dict, *, filename=None) -> BuildConfig:
        """A config from ``{section: {name: value}}`` (or a flat ``{name: value}``).

        Raises
        ------
        FileFormatError
            An unknown section or field, a field in the wrong section, or a
            value of the wrong type or out of range
            (`bgcube.make.config_schema`); the message names file and key.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if not isinstance(data, dict):
            raise FileFormatError(
                f"expected a mapping of sections, got {type(data).__name__}", filename=filename
            )
        values = {}
        for key, value in data.items():
            if key in SECTIONS and isinstance(value, dict):
                for name, item in value.items():
                    if name not in fields:
                        raise FileFormatError(
                            f"unknown build option {section_key(key, name)}; known: "
                            f"{sorted(fields)}",
                            filename=filename,
                        )
                    if fields[name].metadata["section"] != key:
                        raise FileFormatError(
                            f"{section_key(key, name)} belongs in section "
                            f"{fields[name].metadata['section']!r}",
                            filename=filename,
                        )
                    values[name] = item
            elif key in fields:
                values[key] = value
            else:
                raise FileFormatError(
                    f"unknown section or build option {key!r}; sections: {list(SECTIONS)}",
                    filename=filename,
                )
        from .config_schema import check_config_values

        return cls(**check_config_values(values, filename))

    def write(self, filename, *, overwrite: bool = False) -> None:
        """Write the config as YAML, atomically (refusing to replace a file unless asked)."""
        import yaml

        from ..io.atomic import atomic_output

        text = (
            "# bgcube build configuration: bgcube make-models --config THIS_FILE repeats "
            "the build\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)
        )
        with atomic_output(filename, overwrite) as tmp:
            Path(tmp).write_text(text)

    @classmethod
    def read(cls, filename) -> BuildConfig:
        """Read a config written by `write` (or by hand).

        Raises
        ------
        bgcube.errors.DataNotFoundError
            If the file does not exist.
        FileFormatError
            If it is not YAML, holds unknown options or a value of the wrong
            type or out of range (naming the file and the key).
        """
        import yaml

        from ..errors import DataNotFoundError

        path = Path(filename).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"no such build configuration file: {str(path)!r}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise FileFormatError(f"not a YAML file: {problem}", filename=str(path)) from None
        return cls.from_dict(data or {}, filename=str(path))


def _differs(value, default) -> bool:
    """Whether a keyword's value is not its default (arrays compare as given)."""
    if value is default:
        return False
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # e.g. an array against None
        return True


def resolve_exclusion(exclusion, obs_table):
    """Exclusion regions from a build's ``exclusion`` setting.

    Parameters
    ----------
    exclusion : None, 'auto', 'none', str or path, or ExclusionRegions
        ``'auto'``: circles around each run's target and known sources in
        the fields (`~bgcube.data.exclusion.default_exclusion_regions`);
        ``'none'`` or None: no exclusion; a file name: an ECSV or FITS table
        of circles (`ExclusionRegions.read`).
    obs_table : `~astropy.table.Table`
        The observation index (for 'auto').

    Returns
    -------
    regions : `~bgcube.data.exclusion.ExclusionRegions`
    """
    from ..data.exclusion import ExclusionRegions, default_exclusion_regions

    if exclusion is None or (isinstance(exclusion, str) and exclusion.lower() == "none"):
        return ExclusionRegions.empty()
    if isinstance(exclusion, ExclusionRegions):
        return exclusion
    if isinstance(exclusion, str) and exclusion.lower() == "auto":
        return default_exclusion_regions(obs_table)
    return ExclusionRegions.read(exclusion)


def section_key(section: str, name: str) -> str:
    """``'section.name'`` for messages."""
    return f"{section}.{name}"


#: Command-line destinations that are not field names: dest -> the field they set.
FIELD_OF_DEST = {
    "efficiency_norm": "efficiency_column",
    "no_smooth": "smooth",
    "smooth_passes": "smooth",
    "no_progress": "progress",
}


def config_from_args(args, build_parser) -> BuildConfig:
    """The `BuildConfig` of a parsed ``make-models`` command line.

    Starts from ``--config FILE`` (or the defaults) and applies every option
    given on the command line, i.e. whose value differs from its default; an
    option whose ``dest`` is a field's name needs no code here.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    build_parser : callable
        Returns the command's parser (for the options' defaults).

    Returns
    -------
    config : BuildConfig
    """
    config = BuildConfig.read(args.config) if getattr(args, "config", None) else BuildConfig()
    defaults = vars(build_parser().parse_args(["make-models"]))
    given = {k: v for k, v in vars(args).items() if k in defaults and v != defaults[k]}
    names = {f.name for f in dataclasses.fields(BuildConfig)}
    for dest, value in given.items():
        name = FIELD_OF_DEST.get(dest, dest)
        if name in names and dest not in ("no_smooth", "smooth_passes", "no_progress"):
            setattr(config, name, value)
    if given.get("no_smooth"):
        config.smooth = False
    elif "smooth_passes" in given:
        config.smooth = given["smooth_passes"]
    if given.get("no_progress"):
        config.progress = False
    return config

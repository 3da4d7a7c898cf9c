"""The options of the ``bgcube`` command: one `argparse` parser and its sub-commands.

`build_parser` is the whole command line, with every option's help text
(what ``bgcube SUB-COMMAND --help`` prints and the command-line reference of
the documentation shows). The commands themselves are in `bgcube.cli`.
"""

from __future__ import annotations

import argparse

from . import __version__
from .cli_usage import NumberList, OneLineParser

__all__ = ["build_parser"]


def _float_list(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if len(values) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two edges, got {text!r}")
    return values


def _text_list(text):
    """Comma-separated texts ('none' or an empty text: an empty list)."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _overwrite_help(command: str, extra: str = "") -> str:
    """The help of --overwrite (`bgcube.make.earlier_outputs`): what it replaces and removes."""
    return (
        f"replace the files this {command} writes in OUTDIR; once it has written them all, "
        "also remove the files an earlier bgcube command wrote there and this one does not "
        "(models, hdu-index and obs-index, bkg/bkg_obs_*.fits.gz, input files copied into "
        f"data/{extra}: bgcube's own file names only; the report says how many)"
    )


def _add_selection_options(parser):
    """--obs-ids, --exclude-obs-ids and --select (`bgcube.make.selection`)."""
    parser.add_argument(
        "--obs-ids",
        default=None,
        metavar="ID,ID,...|@FILE",
        help="use only these runs: a comma-separated list, or @FILE with one id a line",
    )
    parser.add_argument(
        "--exclude-obs-ids",
        default=None,
        metavar="ID,ID,...|@FILE",
        help="leave these runs out (same forms as --obs-ids)",
    )
    parser.add_argument(
        "--select",
        default=None,
        metavar="CONDITION",
        help="keep runs whose obs-index row satisfies a condition, e.g. "
        '"ZEN_PNT < 40 and N_TELS >= 3" (comparisons, and, or, not, '
        "numbers, strings and column names only; a name with '-' in backquotes: "
        "\"`DATE-OBS` >= '2005-01-01'\")",
    )


def _add_extrapolate_option(parser):
    """--extrapolate / --no-extrapolate: one rule in make-models and apply-models."""
    parser.add_argument(
        "--extrapolate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="runs whose conditions (zenith, optical efficiency, effective area) lie "
        "outside the range of the runs the model was fitted to get the model "
        "extrapolated: written and flagged (BKG_EXTR = T in their files, named in the "
        "report; the default), or left out with --no-extrapolate. make-models and "
        "apply-models treat a run alike",
    )


def _add_input_paths_options(parser):
    """--input-paths and --copy-events (`bgcube.make.output_paths`)."""
    paths = parser.add_mutually_exclusive_group()
    paths.add_argument(
        "--input-paths",
        choices=("relative", "absolute", "copy", "link"),
        default="relative",
        help="how the written hdu-index reaches the input files: 'relative' "
        "(OUTDIR moves together with the data folder), 'absolute' (OUTDIR moves "
        "alone), 'copy' or 'link' them into OUTDIR/data (default: %(default)s)",
    )
    paths.add_argument(
        "--copy-events",
        dest="input_paths",
        action="store_const",
        const="copy",
        help="copy the runs' input files into OUTDIR/data: a self-contained "
        "folder (same as --input-paths copy)",
    )


def _add_apply_models(sub):
    """The apply-models sub-command (`bgcube.make.apply`)."""
    am = sub.add_parser(
        "apply-models",
        help="write the background of other runs from a model folder, for Gammapy",
        description="For every selected run of the GADF data set INDIR, write its background "
        "from the models in MODELDIR (as written by make-models: the joint model evaluated "
        "at the run's conditions, or the group models as make-models gave its own runs: the "
        "model of the run's zenith x azimuth group, or the models interpolated in cos zenith) "
        "as a BKG_3D file under OUTDIR/bkg/, with an "
        "hdu-index.fits.gz and obs-index.fits.gz such that Gammapy's "
        "DataStore.from_dir(OUTDIR) gives these runs with the new background and all "
        "their other HDUs. Runs outside the model's range of conditions (zenith, optical "
        "efficiency, effective area of the runs it was fitted to) are written with the "
        "model extrapolated, flagged and named in the report (as make-models does), or "
        "left out with --no-extrapolate.",
    )
    am.add_argument("modeldir", metavar="MODELDIR", help="model folder (the make-models output)")
    am.add_argument(
        "indir",
        metavar="INDIR",
        help="data set folder (with hdu-index.fits.gz and obs-index.fits.gz)",
    )
    am.add_argument(
        "outdir", metavar="OUTDIR", help="output folder (created if missing; not inside INDIR)"
    )
    _add_selection_options(am)
    am.add_argument(
        "--model-type",
        choices=("3d", "2d"),
        default="3d",
        help="write per-run BKG_3D models, or BKG_2D from the group models of "
        "make-models --model-type 2d (default: %(default)s)",
    )
    _add_extrapolate_option(am)
    _add_input_paths_options(am)
    am.add_argument(
        "--overwrite",
        action="store_true",
        help=_overwrite_help("command", ", bgcube-config.yaml"),
    )
    am.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first unreadable run (default: report it and go on)",
    )
    am.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bgcube`` command."""
    parser = OneLineParser(
        prog="bgcube",
        description="Build 3D background models (DETX, DETY, energy) for Imaging Atmospheric "
        "Cherenkov Telescopes from GADF DL3 data, write them for other runs as Gammapy data "
        "stores, describe their files, and run a simulated demo.",
    )
    parser.add_argument("--version", action="version", version=f"bgcube {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (accepted anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    mm = sub.add_parser(
        "make-models",
        help="build background models from a GADF DL3 data set",
        description="Build background models from the runs of a GADF DL3 data set (a folder "
        "with hdu-index.fits.gz and obs-index.fits.gz). Events inside exclusion regions are "
        "dropped and the time of the covered field-of-view pixels reduced accordingly. "
        "By default (--model joint) one smooth model is fitted to the counts of all runs at "
        "once, its spectrum depending on each run's zenith angle, optical efficiency and "
        "effective area at 1 TeV (from its IRF) (--conditions) and its field-of-view shape on the zenith angle "
        "(--spatial-conditions), with a night effect learnt from the other runs of the same "
        "night; it writes bg_joint_model.fits.gz and one BKG_3D file per run in OUTDIR/bkg/ "
        "with hdu-index.fits.gz and obs-index.fits.gz, so that Gammapy's "
        "DataStore.from_dir(OUTDIR) uses them. --model groups builds one model per zenith "
        "(x azimuth) group as the original gammapy-make-bg-cube-models: "
        "bg_cube_model_group<ID>_table.fits.gz (COUNTS, LIVETIME, BACKGROUND; the HDU named "
        "LIVETIME holds the time chosen with --time, ONTIME by default, as its BKG_TIME "
        "keyword says) and bg_cube_model_group<ID>_image.fits.gz per group.",
        add_help=False,
    )
    mm.add_argument(
        "indir",
        nargs="?",
        default=None,
        metavar="INDIR",
        help="data set folder (with hdu-index.fits.gz and obs-index.fits.gz); with "
        "--config, the file's unless given: a single folder given is then OUTDIR",
    )
    mm.add_argument(
        "outdir",
        nargs="?",
        default=None,
        metavar="OUTDIR",
        help="output folder (created if missing); the build is recorded in "
        "OUTDIR/bgcube-config.yaml. With --config, the file's unless given",
    )
    general = mm.add_argument_group("general options")
    general.add_argument("-h", "--help", action="help", help="show this help message and exit")
    joint = mm.add_argument_group("joint model (the default)")
    groups = mm.add_argument_group("group models (--model groups only)")
    general.add_argument(
        "--config",
        default=None,
        metavar="FILE.yaml",
        help="build configuration (e.g. an earlier OUTDIR/bgcube-config.yaml, "
        "which repeats that build); options given here win. INDIR and OUTDIR come "
        "from the file unless given: 'make-models --config FILE NEWOUT' builds the "
        "file's INDIR into NEWOUT, two folders are INDIR OUTDIR as usual",
    )
    general.add_argument(
        "--test", action="store_true", help="use only the first 10 runs (a quick check)"
    )
    general.add_argument(
        "--model",
        choices=("joint", "groups"),
        default="joint",
        help="'joint': one model fitted to all runs, evaluated per run (the "
        "best in the H.E.S.S. validation); 'groups': one model per zenith group, "
        "the original algorithm (default: %(default)s)",
    )
    joint.add_argument(
        "--conditions",
        type=_text_list,
        default=None,
        metavar="COL[:T[:N]],...",
        help="observation-index columns the spectrum depends on, each with a "
        "transform (cos, log, linear) and a polynomial degree; a column alone, e.g. "
        "ZEN_PNT, is ZEN_PNT:cos:1 (cos for ZEN_PNT and ALT_PNT, log for MUONEFF, DEADC and "
        "AEFF_1TEV, linear for others; degree 1); AEFF_1TEV is each run's "
        "effective area at 1 TeV and 0.5 deg, read from its AEFF_2D HDU (default: "
        "ZEN_PNT:cos:2,MUONEFF:log:2,AEFF_1TEV:log:1, leaving out a column the data lack)",
    )
    joint.add_argument(
        "--spatial-conditions",
        type=_text_list,
        default=None,
        metavar="COL[:T[:N]],...",
        help="columns the field-of-view shape depends on (default: ZEN_PNT:cos:1; "
        "'none' for one shape for all runs)",
    )
    joint.add_argument(
        "--fit-glat-min",
        type=float,
        default=None,
        metavar="DEG",
        help="fit the runs at least this far from the Galactic plane, where "
        "sources contaminate the counts least; every run still gets a model, "
        "see --extrapolate (0: fit all runs; default: 10)",
    )
    _add_extrapolate_option(joint)
    joint.add_argument(
        "--night-sigma",
        type=float,
        default=None,
        metavar="SIGMA",
        help="prior width of the night effect, natural log of the rate, learnt "
        "from the other runs of a night: 0 (none) or 0.001 to 10 (default: 0.1)",
    )
    joint.add_argument(
        "--run-sigma",
        type=float,
        default=None,
        metavar="SIGMA",
        help="width of the run-to-run scatter that no condition explains, natural "
        "log of the rate: how much one run may weigh in the fit and in its "
        "night's effect: 0 (runs weigh by their counts) or 0.001 to 10 (default: 0.07)",
    )
    groups.add_argument(
        "--method",
        choices=("default", "michi"),
        default="default",
        help="energy binning of the cubes: 'default', 0.1-100 TeV (the default); 'michi', "
        "from the lowest energy threshold of the group's runs to 100 TeV",
    )
    groups.add_argument(
        "--zenith-edges",
        action=NumberList,
        type=_float_list,
        default=None,
        metavar="Z0,Z1,...",
        help="zenith bin edges of the groups in deg (default: 0,20,30,40,50,60,70)",
    )
    groups.add_argument(
        "--azimuth-edges",
        action=NumberList,
        type=_float_list,
        default=None,
        metavar="A0,A1,...",
        help="azimuth bin edges in deg; bins may wrap through north, e.g. "
        "-90,90,270 (default: 0,360, one bin)",
    )
    groups.add_argument(
        "--min-observations",
        type=int,
        default=1,
        metavar="N",
        help="merge groups with fewer runs into a zenith neighbour (default: %(default)s)",
    )
    general.add_argument(
        "--exclusion",
        default="auto",
        metavar="FILE|auto|none",
        help="exclusion circles: an ECSV/FITS table (RA, DEC, RADIUS), 'auto' for "
        "circles around each run's target and known sources, or 'none' "
        "(default: %(default)s)",
    )
    groups.add_argument(
        "--time",
        choices=("ONTIME", "LIVETIME"),
        default="ONTIME",
        dest="time_convention",
        help="observation time the model is normalised by (default: %(default)s, "
        "as Gammapy predicts background)",
    )
    groups.add_argument(
        "--alignment",
        choices=("RADEC", "ALTAZ"),
        default="RADEC",
        help="field-of-view alignment of the models (default: %(default)s)",
    )
    general.add_argument(
        "--backend",
        choices=("numpy", "jax", "cupy"),
        default="numpy",
        help="array backend for the cubes (default: %(default)s); with jax, compiled "
        "programs are kept in $BGCUBE_JAX_CACHE (default ~/.cache/bgcube/jax; 'off': none); "
        "where JAX has no GPU or TPU the build computes on NumPy",
    )
    groups.add_argument("--no-smooth", action="store_true", help="do not smooth the rate")
    groups.add_argument(
        "--smooth-passes",
        type=int,
        default=None,
        metavar="N",
        help="number of k5a smoothing passes (default: 3-5 chosen by the counts, "
        "as the original; 1 suits groups of few runs)",
    )
    general.add_argument(
        "--overwrite",
        action="store_true",
        help=_overwrite_help("build") + "; and discard the checkpoint of an unfinished build",
    )
    general.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first unreadable run (default: report it and go on)",
    )
    general.add_argument("--no-progress", action="store_true", help="no progress bar")
    groups.add_argument(
        "--per-observation",
        choices=("none", "group", "interpolate"),
        default=None,
        help="also write a BKG_3D model per run (its group's model, or the group "
        "models interpolated in cos zenith) under OUTDIR/bkg/ with a new "
        "hdu-index.fits.gz and obs-index.fits.gz, so that Gammapy's "
        "DataStore.from_dir(OUTDIR) uses them (default: none)",
    )
    norm = groups.add_mutually_exclusive_group()
    norm.add_argument(
        "--fit-norm",
        action="store_true",
        help="scale each run's model by a norm fitted to its events outside the "
        "exclusion regions (implies --per-observation group if not given)",
    )
    norm.add_argument(
        "--efficiency-norm",
        default=None,
        metavar="COLUMN",
        help="scale each run's model by its optical efficiency from this "
        "obs-index column (e.g. MUONEFF): A*(eff/eff_ref)**index, fitted once "
        "over all runs (implies --per-observation group if not given)",
    )
    where = general.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on the dask.distributed scheduler at ADDRESS (e.g. "
        "tcp://host:8786); workers read the event files themselves "
        "(default: serial)",
    )
    where.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run on a local Dask cluster of N worker processes (default: serial)",
    )
    general.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted build into OUTDIR: runs saved in its "
        "checkpoint (OUTDIR/.bgcube-checkpoint) are not read again; files of the "
        "interrupted build that this one does not write are removed",
    )
    general.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the checkpoint folder after a successful build",
    )
    _add_selection_options(general)
    _add_input_paths_options(general)
    groups.add_argument(
        "--model-type",
        choices=("3d", "2d"),
        default="3d",
        help="'2d' also writes a radially symmetric BKG_2D model per group "
        "(bg_2d_model_group<ID>.fits.gz; default: %(default)s)",
    )

    _add_apply_models(sub)

    demo = sub.add_parser(
        "demo",
        help="simulate a data set, build its models and compare with the truth",
        description="Simulate a small GADF DL3 data set from a known background model, "
        "run the make-models pipeline on it exactly as on real data, compare the "
        "reconstructed models with the truth and write the model files and PNG plots.",
    )
    demo.add_argument(
        "outdir",
        metavar="OUTDIR",
        help="output folder: new (created) or empty, never a data store (a folder holding "
        "an hdu-index or obs-index file) nor inside one",
    )
    demo.add_argument(
        "--n-obs",
        type=int,
        default=20,
        metavar="N",
        help="number of runs, at least 10: the joint model's condition terms need them "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="random seed, an integer >= 0; the same seed gives the same data and models "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an OUTDIR that holds files (an earlier demo's), replacing the "
        "demo's files there",
    )

    info = sub.add_parser(
        "info",
        help="describe a background-model, cube, DL3 or IRF file",
        description="List every HDU of a FITS file written by bgcube or another tool "
        "(name, HDUCLAS keywords, size), say which holds the background model, and "
        "describe it and every cube (axes, units, totals).",
    )
    info.add_argument(
        "filename",
        metavar="FILE",
        help="a FITS file: a bgcube model or cube (bg_joint_model.fits.gz, a group model, "
        "a per-run BKG_3D file) or any other",
    )
    return parser

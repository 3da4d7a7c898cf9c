"""The ``bgcube`` command.

Sub-commands
------------
make-models INDIR OUTDIR
    Build background models from a GADF DL3 data set (one per zenith/azimuth group).
demo OUTDIR
    Simulate a data set, build its models with the same pipeline, compare with the truth.
apply-models MODELDIR INDIR OUTDIR
    Write the background of (other) runs from a model folder, as a Gammapy data store.
info FILE
    Describe a background-model, cube, DL3 or IRF file: its HDUs and background model.

Every sub-command exits with status 0 on success, 1 on bad input (with a
one-line reason on stderr), 2 on a usage error, 130 when interrupted
(Ctrl-C) and, silently, 141 when the reader of its output has gone (``| head``);
``--debug`` shows the traceback of an error. The error handling and
the option checks are in `bgcube.cli_support`.
"""

from __future__ import annotations

import sys
import time
from typing import NoReturn

from .cli_exit import exit_process
from .cli_parser import build_parser
from .cli_support import say_once
from .cli_usage import command_line_text

__all__ = ["main", "command", "build_parser"]


def _limit_blas() -> None:
    """BLAS threads of this process: the free cores (`bgcube.blas_threads`)."""
    from .blas_threads import limit_command_blas

    try:
        limit_command_blas()
    except ValueError as exc:  # a bad $BGCUBE_BLAS_THREADS
        from .cli_support import UsageError

        raise UsageError(str(exc)) from None


def _make_models(args) -> int:
    import astropy.units as u

    from .cli_support import UsageError, check_options
    from .make.config import config_from_args

    if args.config and args.indir is not None and args.outdir is None:  # one folder: OUTDIR
        args.indir, args.outdir = None, args.indir
    config = config_from_args(args, build_parser)
    if config.indir is None or config.outdir is None:
        if args.config and args.outdir is not None:
            raise UsageError(
                f"{args.config} names no input folder (indir): give INDIR OUTDIR "
                "(one folder after --config is OUTDIR)"
            )
        raise UsageError("make-models needs INDIR and OUTDIR (or --config FILE.yaml naming them)")
    if args.config:  # the folders may come from the file: check them as the options were
        args.indir, args.outdir = config.indir, config.outdir
        check_options(args)
    from .make.chain_backend import host_only

    if config.backend == "jax" and not host_only(config):  # compiled programs kept on disk
        from .jax_cache import enable_command_cache, limit_command_lapack

        enable_command_cache()
        if config.model == "joint":  # its fit's small linear systems: one LAPACK thread
            limit_command_lapack()
    _limit_blas()
    start = time.perf_counter()
    result = config.run()
    elapsed = time.perf_counter() - start
    from .make.report import shortened_rows

    table = result.summary_table()
    print("\n".join(shortened_rows(table)))
    if result.joint is not None:
        return _report_joint(result, config, elapsed, table, args)
    _print_norms(result, config.fit_norm, config.efficiency_column)
    for obs_id, reason in result.failed:
        print(say_once(f"left out OBS_ID {obs_id}: {reason}"), file=sys.stderr)
    for message in getattr(result, "messages", []):
        print(
            f"note: {say_once(command_line_text(message, build_parser(), args))}", file=sys.stderr
        )
    n_obs = sum(len(g.obs_ids) for g in result.groups)
    total = sum((g.time for g in result.groups), 0 * u.s)
    print(
        f"\n{len(result.groups)} group(s), {n_obs} observation(s), "
        f"{sum(g.n_filled for g in result.groups)} events in cubes, "
        f"{total.to_value(u.h):.2f} h {result.time_convention}, "
        f"{len(result.failed)} run(s) left out, "
        + (f"{len(result.reused)} run(s) reused from the checkpoint, " if result.reused else "")
        + f"{elapsed:.1f} s"
    )
    _print_files(result.files, config.outdir)
    return 0


def _print_files(files, outdir) -> None:
    """The files written, a folder of many files (the per-run ones) on one line."""
    from .make.report import file_listing

    print(f"{len(files)} file(s) written under {outdir}:")
    for line in file_listing(files, outdir):
        print(f"  {line}")


def _report_joint(result, config, elapsed, table, args) -> int:
    """The end of a joint build's report: the fit, notes, files."""
    from .fit.joint import JOINT_MODEL_FILE
    from .make import report

    joint = result.joint
    model, runs = joint.model, joint.model.runs
    for obs_id, reason in [*result.failed, *joint.outside]:
        print(say_once(f"left out OBS_ID {obs_id}: {reason}"), file=sys.stderr)
    _print_outside(joint.extrapolated, joint.outside)
    for message in result.messages:
        print(
            f"note: {say_once(command_line_text(message, build_parser(), args))}", file=sys.stderr
        )
    conditions = ", ".join(c.name for c in model.conditions) or "none"
    spatial = ", ".join(c.name for c in model.spatial_conditions) or "none"
    n_fit = int(sum(runs["FITTED"]))
    print(
        f"\njoint model fitted to {n_fit} of {len(runs)} run(s) "
        f"({model.meta.get('REASON', '')}; {model.meta.get('NITER')} iterations); "
        f"spectrum depends on {conditions}; field-of-view shape on {spatial}; "
        f"night effects (sigma {model.spec.night_sigma:g}) from the other runs of each night, "
        f"run-to-run scatter {model.spec.run_sigma:g}; "
        f"{len(result.failed) + len(joint.outside)} run(s) left out, "
        + (f"{len(joint.extrapolated)} extrapolated, " if joint.extrapolated else "")
        + f"{elapsed:.1f} s"
    )
    if len(runs) > report.LISTED:  # the table above was shortened
        print(
            f"{report.ratio_summary(table)}; every run's counts and prediction: the RUNS "
            f"table of {config.outdir}/{JOINT_MODEL_FILE}"
        )
    _print_files(result.files, config.outdir)
    return 0


def _print_outside(extrapolated, left_out) -> None:
    """The runs outside the model's range: written extrapolated, or left out (same rule)."""
    from .make.extrapolation import report_lines

    for line in report_lines(extrapolated, left_out):
        print(line, file=sys.stderr)


def _print_norms(result, fit_norm, efficiency_column) -> None:
    """The per-run norms by group, and the efficiency scaling they follow."""
    if not getattr(result, "observations", None) or not (fit_norm or efficiency_column):
        return
    from .make.report import efficiency_law, norm_summary

    kind = (
        f"from {efficiency_column}"
        if efficiency_column
        else "fitted to each run's counts outside the exclusion regions"
    )
    print(f"\nPer-run norms ({kind}; each file's BKG_NORM):")
    print("\n".join(norm_summary(result.observations).pformat(max_lines=-1, max_width=-1)))
    law = efficiency_law(result.observations) if efficiency_column else None
    if law is not None:
        scale, index, eff_ref = law
        print(
            f"efficiency scaling: norm = {scale:.4g} * ({efficiency_column} / "
            f"{eff_ref:.4g}) ** {index:.4g}"
        )


def _apply_models(args) -> int:
    from .make.apply import apply_models

    _limit_blas()
    result = apply_models(
        args.modeldir,
        args.indir,
        args.outdir,
        obs_ids=args.obs_ids,
        exclude_obs_ids=args.exclude_obs_ids,
        select=args.select,
        extrapolate=args.extrapolate,
        input_paths=args.input_paths,
        overwrite=args.overwrite,
        fail_fast=args.fail_fast,
        model_type=args.model_type,
        progress=False if args.no_progress else None,
    )
    for obs_id, reason in result.left_out:
        print(say_once(f"left out OBS_ID {obs_id}: {reason}"), file=sys.stderr)
    _print_outside(
        [(i, result.outside_reasons[i]) for i in result.extrapolated],
        [(i, result.outside_reasons[i]) for i in result.outside],
    )
    for message in result.messages:
        print(f"note: {say_once(message)}", file=sys.stderr)
    extra = f" ({len(result.extrapolated)} extrapolated)" if result.extrapolated else ""
    print(
        f"{len(result.applied)} run(s) written{extra}, {len(result.left_out)} left out; "
        f"{len(result.files)} file(s) in {args.outdir} "
        f"(open with gammapy.data.DataStore.from_dir)"
    )
    return 0


def _demo(args) -> int:
    from .simulate.demo import run_demo

    _limit_blas()
    run_demo(args.outdir, n_obs=args.n_obs, seed=args.seed, overwrite=args.overwrite)
    return 0


def _info(args) -> int:
    from .describe import describe_file

    print(describe_file(args.filename))
    return 0


_COMMANDS = {
    "apply-models": _apply_models,
    "make-models": _make_models,
    "demo": _demo,
    "info": _info,
}


def main(argv=None) -> int:
    """Run the ``bgcube`` command; returns the exit status (see `bgcube.cli_support`)."""
    try:
        from .cli_support import run_command
    except KeyboardInterrupt:  # Ctrl-C while the command starts
        print("bgcube: interrupted", file=sys.stderr)
        return 130
    return run_command(build_parser, _COMMANDS, argv)


def command() -> NoReturn:
    """The ``bgcube`` executable and ``python -m bgcube``: `main`, then the end of the process.

    The process ends without Python's teardown where that is safe
    (`bgcube.cli_exit`).
    """
    exit_process(main())


if __name__ == "__main__":
    command()

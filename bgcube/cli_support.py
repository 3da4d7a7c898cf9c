"""The one place where the ``bgcube`` command checks options and turns errors into messages.

`run_command` parses the command line, checks every option before any work
(`check_options`), runs the sub-command and turns whatever goes wrong into
one line on stderr and an exit status:

* 0: success;
* 1: bad input, a missing package, a file-system error (full disk,
  read-only folder), or any other failure: ``bgcube COMMAND: error: ...``;
* 2: a usage error (an option value that cannot work);
* 130: interrupted (Ctrl-C), at any moment: ``bgcube COMMAND: interrupted``;
* 141 (128 + SIGPIPE, as for a command the signal ends): the reader of the
  output closed the pipe (``bgcube info FILE | head -3``); nothing is said.

No traceback is shown unless ``--debug`` is given (anywhere on the command
line) or the environment variable ``BGCUBE_DEBUG`` is set. Warnings are shown
as one line each. New sub-commands get all of this by being in the command
table; options are checked by their destination name, so a new sub-command
with an ``outdir``, ``backend`` or ``workers`` option is checked the same way.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.util
import os
import re
import select
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path

from .errors import BgcubeError, BuildNoteWarning

__all__ = ["UsageError", "run_command", "check_options", "one_line", "say_once", "install_hint"]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED = 1, 2, 130, 141

#: Extras of pyproject.toml that provide optional packages, by import name.
_EXTRAS = {
    "jax": "jax",
    "cupy": "cupy",
    "array_api_strict": "array_api_strict",
    "dask": "dask",
    "distributed": "dask",
}


class UsageError(BgcubeError, ValueError):
    """An option value that cannot work (exit status 2)."""


def install_hint(extra: str) -> str:
    """The command that installs an optional part of bgcube from its source checkout."""
    return f'pip install -e ".[{extra}]" (in the bgcube source folder)'


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, each repeated ``'prefix: '`` said once."""
    if isinstance(exc, OSError) and not isinstance(exc, BgcubeError) and exc.strerror:
        code = errno.errorcode.get(exc.errno, "")
        text = f"{exc.strerror}" + (f" ({code})" if code else "")
        if exc.filename is not None:
            text = f"cannot write or read {str(exc.filename)!r}: {text}"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            text += "; free some space (or choose another output folder) and run again"
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            text += "; choose a folder you can write to"
    else:
        text = str(exc) or type(exc).__name__
    text = say_once(text)
    text = text.replace("pass overwrite=True", "use --overwrite")
    return text.replace("pass resume=True", "use --resume")


def say_once(text: str) -> str:
    """``text`` on one line, each repeated ``'prefix: '`` said once.

    ``'left out OBS_ID 20136: OBS_ID 20136: file ...'`` becomes
    ``'left out OBS_ID 20136: file ...'``.
    """
    text = " ".join(str(text).split())
    return re.sub(r"((?:[^:;]{1,80}): )(?:\1)+", r"\1", text)


def _checkpoint_hint(args, exc: BaseException) -> str:
    """Where the finished runs are saved, where running the build again can continue it:
    after an interruption or a failure of the system (a full disk, an I/O error, memory),
    not after an error of the input or the options, which the same build would hit again."""
    outdir = getattr(args, "outdir", None)
    folder = Path(outdir) / ".bgcube-checkpoint" if outdir else None
    if folder is None or not folder.is_dir():
        return ""
    n_saved = sum(1 for _ in (folder / "runs").glob("obs*.npz"))  # a listing: cheap
    if not n_saved:
        return ""
    from .make.checkpoint import worth_resuming

    if not worth_resuming(exc):
        return ""
    from .errors import RunFailedError

    saved = f"; the {n_saved} finished run(s) are saved in {str(folder)!r}"
    if isinstance(exc, RunFailedError):  # the saved runs are reused either way
        return (
            f"{saved}: repair the run's file or leave it out (--exclude-obs-ids), "
            "and add --resume to continue"
        )
    return f"{saved}: add --resume to continue"


# --- option checks: by destination name, for every sub-command ---------------


def _check_import(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BgcubeError(
            f"{what} needs the package {module!r}, which is not installed; "
            f"install it with {install_hint(_EXTRAS.get(module, module))}"
        )


#: Fewest runs of ``bgcube demo`` (the joint model fits 4 condition terms: 2 runs each, x 1.25).
DEMO_MIN_RUNS = 10


def check_options(args) -> None:
    """Check the options of a parsed command line before any work.

    Raises
    ------
    UsageError
        An option value that cannot work on its own (exit status 2).
    BgcubeError
        An option that needs a package that is not installed, or an output
        folder that would write into the input (exit status 1).
    """
    smooth = getattr(args, "smooth_passes", None)
    if smooth is not None and smooth < 1:
        raise UsageError(
            f"--smooth-passes must be >= 1, got {smooth} (use --no-smooth for no smoothing)"
        )
    for option in ("night_sigma", "run_sigma"):
        if getattr(args, option, None) is not None:
            from .fit.joint_spec import check_effect_width

            try:
                check_effect_width(getattr(args, option))
            except ValueError as exc:
                raise UsageError(f"--{option.replace('_', '-')}: {exc}") from None
    glat = getattr(args, "fit_glat_min", None)
    if glat is not None and not 0 <= glat <= 90:
        raise UsageError(f"--fit-glat-min must be between 0 and 90 deg, got {glat}")
    for option in ("conditions", "spatial_conditions"):
        for text in getattr(args, option, None) or ():
            from .fit.joint import parse_condition

            try:
                parse_condition(text)
            except ValueError as exc:
                raise UsageError(f"--{option.replace('_', '-')}: {one_line(exc)}") from exc
    n_obs = getattr(args, "n_obs", None)
    if n_obs is not None and n_obs < DEMO_MIN_RUNS:
        raise UsageError(
            f"--n-obs must be >= {DEMO_MIN_RUNS} (the demo fits the joint model, "
            f"whose four condition terms need ten runs), got {n_obs}"
        )
    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise UsageError(f"--seed: expected an integer >= 0, got {seed}")
    min_obs = getattr(args, "min_observations", None)
    if min_obs is not None and min_obs < 1:
        raise UsageError(f"--min-observations must be >= 1, got {min_obs}")
    zenith, azimuth = getattr(args, "zenith_edges", None), getattr(args, "azimuth_edges", None)
    if zenith is not None or azimuth is not None:
        from .make.grouping import ObservationGroups
        from .make.pipeline import DEFAULT_AZIMUTH_EDGES, DEFAULT_ZENITH_EDGES

        try:
            ObservationGroups.from_bins(
                zenith or DEFAULT_ZENITH_EDGES, azimuth or DEFAULT_AZIMUTH_EDGES
            )
        except ValueError as exc:
            raise UsageError(one_line(exc)) from exc
    if getattr(args, "workers", None) is not None or getattr(args, "scheduler", None) is not None:
        option = "--workers" if getattr(args, "workers", None) is not None else "--scheduler"
        _check_import("dask", f"{option} (a build on Dask)")
        _check_import("distributed", f"{option} (a build on Dask)")
    backend = getattr(args, "backend", None)
    if backend not in (None, "numpy"):
        from .array.namespace import BackendUnavailableError, get_namespace

        try:
            # an installed JAX is imported by the build only if it computes on it
            if backend != "jax" or importlib.util.find_spec("jax") is None:
                get_namespace(backend)
        except BackendUnavailableError as exc:
            raise BgcubeError(f"--backend {backend}: {one_line(exc)}") from exc
    exclusion = getattr(args, "exclusion", None)
    if isinstance(exclusion, str) and exclusion.lower() not in ("auto", "none"):
        if not Path(exclusion).is_file():
            raise BgcubeError(
                f"--exclusion: no such file {exclusion!r} "
                "(give an ECSV or FITS table of circles, 'auto' or 'none')"
            )
    indir, outdir = getattr(args, "indir", None), getattr(args, "outdir", None)
    if outdir is not None:
        from .make.guard import check_output_folder, check_output_outside_input

        check_output_folder(outdir)
        if indir is not None:
            check_output_outside_input(indir, outdir)


# --- running a sub-command ------------------------------------------------------


def _set_sigint(handler) -> None:
    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, TypeError):  # not the main thread, or no Python handler to restore
        pass


def _on_sigint(signum, frame):
    """Ctrl-C: raise KeyboardInterrupt, but not where Python would mishandle it.

    A KeyboardInterrupt raised while a finaliser runs (e.g. astropy's
    ``FITS_rec.__del__``, a weakref callback) is printed as "Exception
    ignored" and lost, so the build would go on (`_unraisable_hook` catches
    the cases not seen here); one raised in code that ``exec`` compiles from a
    string (``namedtuple``, ``dataclass``) makes CPython 3.11 kill the
    process with SIGINT at exit, whatever the exit status; one raised while a
    module is being imported can leave a compiled extension half set up
    (seen: a segmentation fault). There the signal is sent again a moment
    later, when that code has finished.
    """
    f = frame
    while f is not None and f.f_code is not run_command.__code__:
        name = f.f_code.co_filename
        if (
            f.f_code.co_name == "__del__"
            or name == "<string>"
            or name.startswith("<frozen importlib")
        ):
            _resend_sigint()
            return
        f = f.f_back
    raise KeyboardInterrupt


def _resend_sigint() -> None:
    threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()


def _unraisable_hook(previous, unraisable):
    """A Ctrl-C that Python could not raise (in a finaliser or weakref callback): send it again."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        _resend_sigint()
        return
    previous(unraisable)


def _format_warning(message, category, filename, lineno, line=None):
    return f"bgcube: warning: {' '.join(str(message).split())}\n"


def _reader_gone() -> bool:
    """True if the reader of stdout or stderr closed its pipe; stdout then goes to devnull.

    As the Python documentation advises for SIGPIPE: the output left in the
    buffer is thrown away (os.devnull on file descriptor 1), so Python's own
    flush at exit does not fail again. A broken pipe elsewhere (a socket to a
    Dask scheduler) is an error like any other.
    """
    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            poller = select.poll()
            poller.register(stream.fileno(), select.POLLOUT)  # POLLERR/POLLHUP always come
            gone |= any(e & (select.POLLERR | select.POLLHUP) for _, e in poller.poll(0))
        except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor
            continue
    if gone:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.dup2(devnull, sys.stderr.fileno())
    return gone


def run_command(build_parser, commands, argv=None) -> int:
    """Parse ``argv``, check the options, run the sub-command; return the exit status.

    Parameters
    ----------
    build_parser : callable
        Returns the `argparse.ArgumentParser` (sub-command in ``args.command``).
    commands : dict
        Sub-command name -> function(args) returning an exit status.
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``; then, after a Ctrl-C, a
        second Ctrl-C during the exit is ignored too).

    Returns
    -------
    status : int
        0, 1, 2 or 130 (see the module docstring).
    """
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("BGCUBE_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    name, args = "bgcube", None
    previous_handler = signal.getsignal(signal.SIGINT)
    previous_format = warnings.formatwarning
    _set_sigint(_on_sigint)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(_unraisable_hook, previous_hook)
    try:
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            name = f"bgcube {args.command}"
            if not debug:
                warnings.formatwarning = _format_warning
            check_options(args)
            with warnings.catch_warnings():  # the commands print a build's notes themselves
                warnings.simplefilter("ignore", BuildNoteWarning)
                status = commands[args.command](args)
            sys.stdout.flush()  # a reader gone is seen here, not as Python exits
            return status
        except KeyboardInterrupt as exc:
            _set_sigint(signal.SIG_IGN)  # a second Ctrl-C while we tidy up
            if debug:
                traceback.print_exc()
            hint = _checkpoint_hint(args, exc) if args else ""
            print(f"{name}: interrupted{hint}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except SystemExit:
            raise
        except Exception as exc:
            if isinstance(exc, BrokenPipeError) and _reader_gone():
                return EXIT_PIPE_CLOSED
            if debug:
                traceback.print_exc()
            if args is not None:  # build options named as typed; their conflicts: usage
                from .cli_usage import named_as_typed

                exc = named_as_typed(exc, parser, args, UsageError)
            status = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
            foreseeable = isinstance(
                exc, BgcubeError | OSError | ValueError | ImportError | MemoryError
            )
            if foreseeable:
                message = one_line(exc) + (_checkpoint_hint(args, exc) if args else "")
            else:
                message = (
                    f"internal error ({type(exc).__name__}: {one_line(exc)}); "
                    "run again with --debug to see the traceback, and please report it"
                )
            if status == EXIT_USAGE:
                message += f" (see '{name} --help')"
            print(f"{name}: error: {message}", file=sys.stderr)
            return status
    except KeyboardInterrupt:  # Ctrl-C while an error was being reported
        _set_sigint(signal.SIG_IGN)
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        warnings.formatwarning = previous_format
        sys.unraisablehook = previous_hook
        # on the command line only the exit is left: a Ctrl-C now changes nothing
        _set_sigint(signal.SIG_IGN if from_command_line else previous_handler)

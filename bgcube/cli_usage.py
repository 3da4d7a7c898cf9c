"""Usage errors of the ``bgcube`` command: one line, naming the options as typed.

`OneLineParser` is the command's `argparse.ArgumentParser`: a usage error
(an unknown option, an invalid choice, a missing argument) is one line on
stderr, said by the sub-command's own parser, with exit status 2 (argparse
prints the whole usage first, and reports a sub-command's unknown options
as the top-level command's). An option stored with the `NumberList` action
takes a value that starts with '-' (``--azimuth-edges -90,90,270``), which
argparse would take for an option.

`command_line_text` turns a message of the build (`bgcube.make.option_text`),
which names build options by their Python keywords (``smooth``,
``fit_glat_min=0``), into the same message naming the command-line options
(``--smooth-passes``, ``--fit-glat-min 0``): the flags that the user typed
where there are several for one keyword.
"""

from __future__ import annotations

import argparse
import re
import sys

__all__ = ["OneLineParser", "NumberList", "command_line_text", "named_as_typed"]


class NumberList(argparse.Action):
    """Store an option's list of numbers, whose text may start with '-' (see `OneLineParser`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


#: A value argparse would take for an option: '-' then a digit or a point ('-90,90,270').
_NEGATIVE = re.compile(r"-[\d.]")


class OneLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line (exit status 2).

    Unknown arguments are an error of the parser that met them (a
    sub-command's parser for its own options), also in `parse_known_args`.
    The value of a `NumberList` option may start with '-': ``--opt -1,2``
    is read as ``--opt=-1,2``.
    """

    def error(self, message: str):
        """Print ``PROG: error: MESSAGE (see 'PROG --help')`` and exit with status 2."""
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args=None, namespace=None):
        """Parse the arguments; refuse those this parser does not know (see the class)."""
        if args is not None:
            args = self._with_number_lists_joined(list(args))
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def _takes_number_list(self, arg: str) -> bool:
        """Whether ``arg`` names (or abbreviates) one of this parser's `NumberList` options."""
        options = self._option_string_actions
        if not arg.startswith("--") or "=" in arg:
            return False
        names = [arg] if arg in options else [s for s in options if s.startswith(arg)]
        return len(names) == 1 and isinstance(options[names[0]], NumberList)

    def _with_number_lists_joined(self, args: list) -> list:
        """``args`` with each `NumberList` option joined to a value that starts with '-'."""
        joined = []
        for k, arg in enumerate(args):
            if arg == "--":  # the rest are positional arguments
                return joined + args[k:]
            previous = joined[-1] if joined else None
            if (
                isinstance(arg, str)
                and _NEGATIVE.match(arg)
                and isinstance(previous, str)
                and self._takes_number_list(previous)
            ):
                joined[-1] = f"{previous}={arg}"
            else:
                joined.append(arg)
        return joined


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps its sub-parsers in a private table
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def _flag_names(parser: argparse.ArgumentParser, args: argparse.Namespace, field_of_dest: dict):
    """Build-option (field) name -> the function naming it as a command-line setting."""
    from .make.option_text import python_setting

    command = _subparser(parser, args.command)
    defaults = {action.dest: action.default for action in command._actions}
    by_field: dict[str, list] = {}
    for action in command._actions:
        if action.option_strings:
            by_field.setdefault(field_of_dest.get(action.dest, action.dest), []).append(action)

    def typed(action) -> bool:
        return getattr(args, action.dest, None) != defaults.get(action.dest)

    def name(field: str, value=...) -> str:
        actions = by_field.get(field)
        if not actions:  # no option for it: the Python name
            return python_setting(field, value)
        if value is not ...:  # a setting to give: the option with this value
            flag = max(actions[0].option_strings, key=len)
            return flag if actions[0].nargs == 0 else f"{flag} {_value_text(value)}"
        chosen = [a for a in actions if typed(a)]
        if not chosen and getattr(args, "config", None):  # set in the configuration file
            return f"{_yaml_key(field)} in {args.config}"
        texts = []
        for action in chosen or actions[:1]:
            flag = max(action.option_strings, key=len)
            if typed(action) and action.choices is not None:
                texts.append(f"{flag} {getattr(args, action.dest)}")  # e.g. --alignment ALTAZ
            else:
                texts.append(flag)
        return " and ".join(texts)

    return name


def _yaml_key(field: str) -> str:
    """``section.field``, as in ``bgcube-config.yaml``."""
    import dataclasses

    from .make.config import BuildConfig

    sections = {f.name: f.metadata["section"] for f in dataclasses.fields(BuildConfig)}
    return f"{sections[field]}.{field}" if field in sections else field


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(_value_text(v) for v in value)
    return str(value)


def command_line_text(text, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``text`` naming the command-line options instead of the build keywords.

    Parameters
    ----------
    text : str or `~bgcube.make.option_text.OptionText`
        A message; a plain `str` is returned unchanged.
    parser : argparse.ArgumentParser
        The command's parser (`bgcube.cli_parser.build_parser`).
    args : argparse.Namespace
        The parsed command line (which options were typed).

    Returns
    -------
    text : str
    """
    from .make.config import FIELD_OF_DEST
    from .make.option_text import OptionText

    if not isinstance(text, OptionText) or getattr(args, "command", None) is None:
        return str(text)
    return text.render(_flag_names(parser, args, FIELD_OF_DEST), verb="add")


def named_as_typed(exc: BaseException, parser, args, usage_error: type) -> BaseException:
    """An error of the build whose message names options, with them named as typed.

    Parameters
    ----------
    exc : BaseException
        The error; its message is an `~bgcube.make.option_text.OptionText`
        or not (then ``exc`` is returned as it is).
    parser : argparse.ArgumentParser
    args : argparse.Namespace
        The parsed command line.
    usage_error : type
        The exception of a usage error (exit status 2).

    Returns
    -------
    exc : BaseException
        ``usage_error(message)`` for an `~bgcube.make.option_text.OptionError`
        (options that cannot work); else ``exc`` with its message rewritten.
    """
    option_text = sys.modules.get("bgcube.make.option_text")  # imported where raised
    message = exc.args[0] if exc.args else None
    if option_text is None or not isinstance(message, option_text.OptionText):
        return exc
    text = command_line_text(message, parser, args)
    if isinstance(exc, option_text.OptionError):
        return usage_error(text)
    exc.args = (text, *exc.args[1:])
    return exc

"""Messages that name build options, said in Python or command-line terms.

A build option is a keyword of `~bgcube.make.make_models` (a field of
`~bgcube.make.config.BuildConfig`) and an option of ``bgcube make-models``.
A message about one (``smooth only applies to the group models: pass
model='groups'``) is an `OptionText`: as a `str` it names the Python keywords;
`OptionText.render` names them otherwise, as the command does
(``--smooth-passes only applies to the group models: add --model groups``,
`bgcube.cli_usage`). `OptionError` is raised with such a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import BgcubeError

__all__ = ["OptionText", "OptionError", "python_setting", "option_list"]


def python_setting(name: str, value: Any = ...) -> str:
    """A keyword as a Python caller writes it: ``name``, or ``name=value`` with a value.

    Parameters
    ----------
    name : str
        The keyword (a `~bgcube.make.config.BuildConfig` field).
    value : object, optional
        Its value; ``...`` (the default) for the keyword alone.

    Returns
    -------
    text : str
    """
    if value is ...:
        return name
    if isinstance(value, float):
        return f"{name}={value:g}"
    return f"{name}={value!r}"


class OptionText(str):
    """A message naming build options, by their Python keywords unless rendered otherwise.

    Parameters
    ----------
    template : str
        The message, with ``{0}``, ``{1}``, ... where the settings are
        named and ``{verb}`` for how one gives an option ('pass' in Python).
    *settings : tuple
        ``(name,)`` for an option named alone, ``(name, value)`` for an
        option with its value.

    Examples
    --------
    >>> text = OptionText("{verb} {0} to fit all runs", ("fit_glat_min", 0.0))
    >>> str(text)
    'pass fit_glat_min=0 to fit all runs'
    """

    template: str
    settings: tuple

    def __new__(cls, template: str, *settings: tuple) -> OptionText:
        names = [python_setting(*s) for s in settings]
        self = super().__new__(cls, template.format(*names, verb="pass"))
        self.template, self.settings = template, tuple(settings)
        return self

    def __reduce__(self):
        return (type(self), (self.template, *self.settings))

    def render(self, name: Callable[..., str], verb: str = "pass") -> str:
        """The message with each option named by ``name(option, [value])``.

        Parameters
        ----------
        name : callable
            ``name(option)`` or ``name(option, value)`` -> text.
        verb : str
            How one gives an option (the command: 'add').

        Returns
        -------
        text : str
        """
        return self.template.format(*(name(*s) for s in self.settings), verb=verb)


class OptionError(BgcubeError, ValueError):
    """A build option that cannot work, or options that do not go together.

    Parameters
    ----------
    text : OptionText
        The message (its `str` names the Python keywords).
    """

    def __init__(self, text: OptionText):
        super().__init__(text)
        self.text = text


def option_list(count: int, first: int = 0) -> str:
    """The template naming ``count`` settings from ``{first}``: ``'{0}, {1} and {2}'``."""
    fields = [f"{{{i}}}" for i in range(first, first + count)]
    return fields[0] if count == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]

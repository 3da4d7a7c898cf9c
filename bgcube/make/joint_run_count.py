"""Whether a joint build has enough runs to fit, and what to do where it has not.

`check_enough_runs` is called before any run is read (the runs selected
for the fit are known then) and again after (runs whose events could not
be read are left out): too few runs is a `~bgcube.errors.FitError` that
says how many the conditions need, how many there are, why runs are
missing (left out as unreadable, or not fitted for their Galactic
latitude) and which options would help (an
`~bgcube.make.option_text.OptionText`: the keywords from Python, the
options as typed from the command).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import FitError
from ..fit.joint_fitting import MIN_FIT_RUNS, min_fit_runs
from .option_text import OptionText

__all__ = ["check_enough_runs"]


def check_enough_runs(
    n_fitted: int,
    conditions: Sequence,
    *,
    n_selected: int,
    unread: Sequence[tuple[int, str]] = (),
) -> None:
    """Raise where the joint model has too few runs to fit its conditions.

    Parameters
    ----------
    n_fitted : int
        Runs the model would be fitted to.
    conditions : sequence of `~bgcube.fit.joint.Condition`
        The spectral conditions (each power is a term, see
        `~bgcube.fit.joint_fitting.min_fit_runs`).
    n_selected : int
        Runs selected for the build (fitted or not, readable or not).
    unread : sequence of (int, str)
        Runs left out as unreadable, with their reason.

    Raises
    ------
    FitError
        Fewer than ``min_fit_runs(conditions)`` runs to fit; the message
        says what to do.
    """
    n_needed = min_fit_runs(conditions)
    if n_fitted >= n_needed:
        return
    n_terms = sum(int(c.degree) for c in conditions)
    names = ", ".join(c.name for c in conditions) or "none"
    why = []
    if unread:
        ids = ", ".join(str(i) for i, _ in unread[:5]) + (", ..." if len(unread) > 5 else "")
        why.append(
            f"{len(unread)} of the {n_selected} selected run(s) could not be read and were "
            f"left out (OBS_ID {ids}; the first: {_literal(unread[0][1])})"
        )
    n_readable = n_selected - len(unread)
    if n_fitted < n_readable:
        why.append(f"{n_readable - n_fitted} run(s) near the Galactic plane are not fitted ({{0}})")
    todo = ["select more runs"]
    if n_fitted < n_readable:
        todo.append("fit the runs near the Galactic plane too ({1})")
    if n_fitted >= MIN_FIT_RUNS:
        todo.append("use fewer conditions or lower degrees ({2})")
    todo.append("use the group models ({3})")
    raise FitError(
        OptionText(
            f"the joint model needs at least {n_needed} runs to fit its {n_terms} condition "
            f"term(s) ({_literal(names)}) and has {n_fitted}"
            + "".join(f"; {text}" for text in why)
            + f": {', '.join(todo[:-1])} or {todo[-1]}",
            ("fit_glat_min",),
            ("fit_glat_min", 0.0),
            ("conditions",),
            ("model", "groups"),
        )
    )


def _literal(text: str) -> str:
    """``text`` as it is in an `~bgcube.make.option_text.OptionText` template."""
    return str(text).replace("{", "{{").replace("}", "}}")

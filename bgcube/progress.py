"""Progress bars of long builds: tqdm where the user sees a terminal, nothing otherwise.

Every step of a build that loops over runs (reading them, their effective
areas, writing their files) wraps its loop in `progress_bar`; the joint
fit, whose number of Newton steps is not known in advance, reports each
step to a `StepProgress`. tqdm is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["progress_bar", "StepProgress", "show_progress"]


def show_progress(enabled: bool | None) -> bool:
    """Whether to show bars: ``enabled``, or (None) whether stderr is a terminal."""
    return sys.stderr.isatty() if enabled is None else bool(enabled)


def progress_bar(
    iterable: Iterable,
    total: int | None = None,
    desc: str | None = None,
    enabled: bool | None = None,
    unit: str = "obs",
) -> Iterable:
    """``iterable``, wrapped in a tqdm progress bar when bars are shown.

    Parameters
    ----------
    iterable : iterable
    total : int, optional
        Number of items (for the bar's length and time estimate).
    desc : str, optional
        Label of the bar.
    enabled : bool, optional
        Show the bar (default: when stderr is a terminal).
    unit : str
        What one item is called.
    """
    if not show_progress(enabled):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)


class StepProgress:
    """A bar counting the steps of an iterative fit, with the fit's own measure of progress.

    Use as a context manager; call it with each step's number and its
    expected decrease of the objective (what the fit stops on).

    Parameters
    ----------
    desc : str
        Label of the bar.
    enabled : bool, optional
        Show the bar (default: when stderr is a terminal).
    """

    def __init__(self, desc: str, enabled: bool | None = None):
        self.desc, self.enabled = desc, show_progress(enabled)
        self._bar = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=self.desc, unit="step", leave=False)
        return self

    def __call__(self, step: int, expected_decrease: float) -> None:
        """Report Newton step ``step``, whose expected decrease is ``expected_decrease``."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"expected decrease {expected_decrease:.1e}", refresh=False)
            self._bar.update(step - self._bar.n)
            self._bar.refresh()  # a fit takes few steps, each long enough to show

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

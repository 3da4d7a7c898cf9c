"""Progress bars: shown on a terminal or when asked, never otherwise; the fit's step counter."""

import io
import sys

from bgcube.progress import StepProgress, progress_bar, show_progress


def test_no_bar_unless_asked_or_on_a_terminal(monkeypatch):
    items = [1, 2, 3]
    assert progress_bar(items, enabled=False) is items
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert show_progress(None) is False
    assert progress_bar(items) is items
    with StepProgress("fit") as on_step:
        on_step(1, 10.0)
    assert sys.stderr.getvalue() == ""


def test_bar_labels_and_counts(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(progress_bar(range(4), 4, "runs", True)) == [0, 1, 2, 3]
    assert "runs:" in err.getvalue() and "/4 " in err.getvalue()


def test_step_progress_counts_newton_steps_and_shows_the_expected_decrease(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with StepProgress("joint fit", True) as on_step:
        for step, decrease in enumerate((3e4, 2e2, 5e-3), start=1):
            on_step(step, decrease)
        assert on_step._bar.n == 3
        assert on_step._bar.postfix == "expected decrease 5.0e-03"
    assert on_step._bar is None  # closed
    assert "joint fit" in err.getvalue()

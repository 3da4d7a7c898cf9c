"""Collect benchmarks/results/*.md into one generated page of the user guide.

The benchmark scripts write their results (with the machine, the load and
how each number was measured) as Markdown; this page shows them as they are
in the repository, so the documentation never quotes stale numbers. Blocks
that speak of the project's internal issue tracker are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

_ISSUE = re.compile(r"\b[Ii]ssues? \d+")

#: results files in this order first; any other file follows alphabetically
ORDER = (
    "make_models",
    "joint_fit",
    "archive",
    "archive_joint",
    "fill",
    "fill_events",
    "stream",
    "stream_jax",
    "smooth",
    "fit",
    "dask",
)


def _clean(text: str) -> str:
    """Drop the paragraphs and ``##`` sections that mention an issue number."""
    out, skip_level = [], None
    for block in re.split(r"\n\s*\n", text.strip()):
        heading = re.match(r"^(#+)\s", block)
        if heading:
            level = len(heading.group(1))
            if skip_level is not None and level <= skip_level:
                skip_level = None
            if skip_level is None and _ISSUE.search(block.splitlines()[0]):
                skip_level = level
                continue
        if skip_level is not None or _ISSUE.search(block):
            continue
        out.append(block)
    return "\n\n".join(out) + "\n"


def write_page(results: Path, page: Path) -> Path:
    """Write ``page`` (MyST) from the Markdown files in ``results``."""
    files = sorted(
        results.glob("*.md"),
        key=lambda p: (p.stem not in ORDER, ORDER.index(p.stem) if p.stem in ORDER else 0, p.stem),
    )
    parts = [
        "# Benchmark results",
        "",
        "The files in `benchmarks/results/` as the benchmark scripts wrote them,",
        "each with the machine, the load and how its numbers were measured.",
        "Rerun a script (`python benchmarks/bench_<name>.py`) to measure on your",
        "machine.",
        "",
    ]
    for path in files:
        body = _clean(path.read_text())
        # one level deeper than this page's title
        body = re.sub(r"^(#+)(\s)", r"#\1\2", body, flags=re.M)
        parts += [
            f"(bench-{path.stem})=",
            "",
            body,
            f"*Source: `benchmarks/results/{path.name}`*",
            "",
        ]
    text = "\n".join(parts)
    if not page.exists() or page.read_text() != text:
        page.write_text(text)
    return page

"""Take headless-Chromium screenshots of pages of the built documentation site.

Usage::

    python docs/screenshots.py docs/_build/html docs/_build/screenshots [--browser chromium]

Writes ``home.png``, ``api.png`` (the ``FOVCube`` page) and ``gallery.png``
(the first executed gallery example) and checks that each is a PNG of
non-trivial size. Chromium runs without a sandbox, GPU, network services or
profile (a temporary user-data folder), so it works in containers and CI.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: name of the screenshot -> page of the site
PAGES = {
    "home": "index.html",
    "api": "api/generated/bgcube.FOVCube.html",
    "gallery": "gallery/plot_simulated_models.html",
}

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def screenshot(browser: str, page: Path, output: Path, size=(1400, 1800)) -> Path:
    """Render ``page`` (a local HTML file) into the PNG ``output``."""
    with tempfile.TemporaryDirectory(prefix="bgcube-chromium-") as profile:
        cmd = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={output}",
            page.resolve().as_uri(),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not output.is_file():
        raise SystemExit(
            f"{browser} failed on {page} (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    data = output.read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 20_000:
        raise SystemExit(f"{output}: not a PNG of a rendered page ({len(data)} bytes)")
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built site (sphinx -b html output)")
    parser.add_argument("outdir", type=Path, help="folder for the PNG files")
    parser.add_argument(
        "--browser", default=None, help="Chromium executable (default: found on PATH)"
    )
    args = parser.parse_args(argv)
    browser = args.browser or next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        print("no Chromium found: install it with 'apt-get install chromium'", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, page in PAGES.items():
        path = args.html / page
        if not path.is_file():
            raise SystemExit(f"{path} does not exist: build the site first")
        out = screenshot(browser, path, args.outdir / f"{name}.png")
        print(f"{name}: {page} -> {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

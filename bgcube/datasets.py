"""Finding the reference data files (legacy cubes, H.E.S.S. DL3 DR1, CTA IRFs).

The data folder is ``$BGCUBE_DATA`` when set, else the first existing
``shared/data`` folder beside the project checkout (``../shared/data``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataNotFoundError

__all__ = ["data_dir", "get_path", "ENV_VAR"]

#: Environment variable naming the reference data folder.
ENV_VAR = "BGCUBE_DATA"


def _candidates():
    env = os.environ.get(ENV_VAR)
    if env:
        yield Path(env).expanduser()
        return
    package_root = Path(__file__).resolve().parent.parent
    yield package_root.parent / "shared" / "data"
    yield Path.cwd().parent / "shared" / "data"
    yield Path.cwd() / "shared" / "data"


def data_dir() -> Path:
    """Return the reference data folder.

    Raises
    ------
    DataNotFoundError
        If no folder is found; the message says to set ``BGCUBE_DATA``.
    """
    tried = []
    for path in _candidates():
        if path.is_dir():
            return path
        tried.append(str(path))
    raise DataNotFoundError(
        f"bgcube reference data not found (looked in {', '.join(tried)}); "
        f"set the environment variable {ENV_VAR} to the folder holding "
        "gammapy-extra-background/, hess-dl3-dr1/ and cta-1dc/"
    )


def get_path(relative: str) -> Path:
    """Return the path of a reference file, e.g. ``'cta-1dc/irf_file_South_z20_50h.fits'``.

    Raises
    ------
    DataNotFoundError
        If the folder or the file is missing; the message says what to set.
    """
    path = data_dir() / relative
    if not path.exists():
        raise DataNotFoundError(
            f"reference file {str(path)!r} does not exist; set {ENV_VAR} to a folder "
            f"that holds {relative}"
        )
    return path

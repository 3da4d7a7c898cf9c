"""Functions of the layers above the containers that the containers' methods call, by name.

The original Gammapy `FOVCube` and `FOVCubeBackgroundModel` read, write and
plot themselves (``read``, ``write``, ``plot_image``, ``peek``, ...), while
FITS I/O (`bgcube.io`) and plotting (`bgcube.plotting`) are layers above the
containers: they know the containers, the containers do not import them.
The methods look the functions up here instead; the package's front door
(``bgcube/__init__.py``) says where each one lives, and its module is
imported when it is first used (so ``import bgcube.cube`` loads neither
astropy's FITS code nor matplotlib).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["provide", "service"]

_PROVIDERS: dict[str, tuple[str, str]] = {}


def provide(name: str, module: str, attribute: str) -> None:
    """Say that the service ``name`` is ``module.attribute`` (imported on first use).

    Parameters
    ----------
    name : str
        The service's name, e.g. ``'read_cube'``.
    module : str
        The module that defines it, e.g. ``'bgcube.io'``.
    attribute : str
        Its name in that module.
    """
    _PROVIDERS[name] = (module, attribute)


def service(name: str) -> Callable:
    """The function registered as ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    function : callable

    Raises
    ------
    LookupError
        If no module provides ``name`` (``bgcube`` itself was not imported).
    """
    try:
        module, attribute = _PROVIDERS[name]
    except KeyError:
        raise LookupError(
            f"no module provides bgcube's {name!r}; import bgcube (its __init__ registers it)"
        ) from None
    return getattr(importlib.import_module(module), attribute)

"""Smoothing methods of `bgcube.FOVCubeBackgroundModel.smooth`, by name.

The original kernel smoothing (``'k5a'``) is the model's own. Other methods
live in layers above the model (``'fit'``: `bgcube.fit.smooth_by_fit`, which
needs JAX), so the model looks them up here instead of importing them: the
package's front door (``bgcube/__init__.py``) registers ``'fit'``, importing
`bgcube.fit` only when the method is first used. A method is called as
``method(bg_model, model, **kwargs)`` with the arguments given to ``smooth``
and replaces the model's background cube in place.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SmoothingMethod", "register_smoothing_method", "smoothing_method"]

#: ``method(bg_model, model, **kwargs)``: replaces ``bg_model``'s background cube.
SmoothingMethod = Callable[..., object]

#: The original kernel smoothing, done by the model itself.
KERNEL = "k5a"

_METHODS: dict[str, SmoothingMethod] = {}


def register_smoothing_method(name: str, method: SmoothingMethod) -> None:
    """Make ``FOVCubeBackgroundModel.smooth(method=name)`` call ``method``.

    Parameters
    ----------
    name : str
        The method's name (not ``'k5a'``, the model's own kernel smoothing).
    method : callable
        ``method(bg_model, model, **kwargs)``; replaces the background cube
        of ``bg_model`` in place.

    Raises
    ------
    ValueError
        If ``name`` is ``'k5a'``.
    """
    if name == KERNEL:
        raise ValueError(f"{KERNEL!r} is the model's own kernel smoothing")
    _METHODS[name] = method


def smoothing_method(name: str) -> SmoothingMethod:
    """The registered smoothing method called ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    method : callable

    Raises
    ------
    ValueError
        If no method of that name is registered.
    """
    try:
        return _METHODS[name]
    except KeyError:
        names = " or ".join(repr(n) for n in (KERNEL, *_METHODS))
        raise ValueError(f"unknown smoothing method {name!r}; choose {names}") from None

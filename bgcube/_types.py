"""Type aliases of the shell's annotations (the array core's are in ``bgcube/array/_typing.py``).

Annotations only: nothing here runs. Units travel as astropy objects, arrays
as any Array API array, backends as a name or a namespace module.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, TypeAlias

__all__ = [
    "PathLike",
    "BackendLike",
    "ArrayLike",
    "QuantityLike",
    "Array",
    "CubeLike",
    "ModelLike",
]

#: A file or folder name.
PathLike: TypeAlias = str | os.PathLike
#: A backend: its name ('numpy', 'jax', 'cupy', ...), its namespace module, or None (NumPy).
BackendLike: TypeAlias = str | ModuleType | None
#: Numbers an array can be made of (a list, a NumPy array, an array of any backend).
ArrayLike: TypeAlias = Any
#: An astropy Quantity (or Angle), or plain numbers in the documented unit.
QuantityLike: TypeAlias = Any
#: Any Array API array.
Array: TypeAlias = Any
#: A `bgcube.FOVCube` (or subclass), in modules below the cube layer that do not import it.
CubeLike: TypeAlias = Any
#: A `bgcube.FOVCubeBackgroundModel`, in modules below the model layer.
ModelLike: TypeAlias = Any

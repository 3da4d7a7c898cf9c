"""Type aliases of the array core (annotations only; nothing here runs on the data path).

The Array API standard has no single array type a checker knows: `Array` is
any standard-conforming array (NumPy, CuPy, JAX, array_api_strict, ...) and
`Namespace` the module returned by ``array_namespace``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeAlias

__all__ = ["Array", "Namespace"]

#: Any Array API array.
Array: TypeAlias = Any
#: An Array API namespace (a module).
Namespace: TypeAlias = ModuleType

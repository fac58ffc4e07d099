"""Host arrays from what callers hand in: anything NumPy can view, without a copy when the layout allows.

Kernel helpers and ``hlx.Kernel`` take NumPy arrays, buffer-protocol objects (``memoryview``,
``array.array``, ``bytes``), objects with ``__array__`` or ``__array_interface__``, DLPack producers
(through ``np.from_dlpack``) and nested Python lists. Only lists and scalars, which have no memory of their
own, are copied here; they also have no dtype of their own, so their floats become float32 and their ints
int32 (when every value fits), the dtypes HLX's kernels take.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlx_core.errors import ContractError

_UNTYPED = (list, tuple, int, float, bool)  # Python values: NumPy picks a 64-bit dtype for them
_I32 = np.iinfo(np.int32)


def as_host_array(value: Any, where: str) -> np.ndarray:
    """``value`` as a NumPy array (a view of its memory where it has any); E_CONTRACT_FIELD_TYPE naming
    ``where`` when NumPy cannot view it as numbers."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (str, dict)) or value is None:
        raise _not_an_array(value, where)
    array = _view(value, where)
    if array.dtype.kind not in "biufc":
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{where}: NumPy reads {type(value).__name__} as a "
                            f"{array.dtype} array, not an array of numbers")
    if isinstance(value, _UNTYPED):
        array = _narrowed(array)
    return array


def _view(value: Any, where: str) -> np.ndarray:
    """The array NumPy makes of ``value``: DLPack first (it names its device), then the buffer protocol,
    then ``__array__`` and sequences."""
    if hasattr(value, "__dlpack__") and hasattr(value, "__dlpack_device__"):
        try:
            return np.from_dlpack(value)
        except (BufferError, TypeError, ValueError, RuntimeError) as exc:
            if not hasattr(value, "__array__"):
                raise ContractError("E_CONTRACT_FIELD_TYPE", f"{where}: this {type(value).__name__} cannot be "
                                    f"read on the host through DLPack ({exc}); copy it to host memory "
                                    "first") from None
    try:
        return np.asarray(memoryview(value))
    except (TypeError, ValueError, NotImplementedError):
        pass  # no buffer protocol, or a format NumPy does not read: try NumPy's other routes
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{where}: NumPy cannot view this "
                            f"{type(value).__name__} as an array ({exc})") from None


def _narrowed(array: np.ndarray) -> np.ndarray:
    """A list's float64 as float32 and its int64 as int32 when every value fits (bools stay bool)."""
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64 and (array.size == 0 or (_I32.min <= array.min() and array.max() <= _I32.max)):
        return array.astype(np.int32)
    return array


def _not_an_array(value: Any, where: str) -> ContractError:
    return ContractError("E_CONTRACT_FIELD_TYPE", f"{where} must be an array (anything NumPy can view), a "
                         f"tensor handle or hlx.kernels.stage(i), not {type(value).__name__}")

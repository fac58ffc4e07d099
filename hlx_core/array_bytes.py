"""An array's bytes as a device reads them, for every backend's uploads."""
from __future__ import annotations

import numpy as np


def host_bytes(array: np.ndarray) -> memoryview:
    """C order, little-endian, one byte per item of the view (copied only when the array is not already)."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return memoryview(a).cast("B") if a.size else memoryview(b"")

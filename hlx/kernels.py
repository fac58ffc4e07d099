"""``hlx.kernels``: helpers that build contracts for the kernel library (re-exported, no logic here)."""
from hlx_core.kernels.helpers import (
                                      add,
                                      conv2d,
                                      gemm,
                                      mul,
                                      pipeline,
                                      reduce_sum,
                                      relu,
                                      saxpy,
                                      softmax,
                                      stage,
                                      transpose,
)

__all__ = ["add", "mul", "saxpy", "relu", "reduce_sum", "softmax", "transpose", "gemm", "conv2d",
           "pipeline", "stage"]

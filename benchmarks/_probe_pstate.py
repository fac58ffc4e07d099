"""Probe: does a CUDA context in the process change how fast Vulkan kernels run?"""
import statistics, subprocess, sys, numpy as np
from _variants import open_session, warm
import hlx
from hlx_core.bench.harness import warm_up

def smi():
    return subprocess.run(["nvidia-smi", "--query-gpu=pstate,clocks.sm,clocks.mem,power.draw", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.strip()

n = 64 << 20
rng = np.random.default_rng(0)
x = hlx.collapse(rng.standard_normal(n, dtype=np.float32)); y = hlx.collapse(rng.standard_normal(n, dtype=np.float32))
s = open_session(False)
plans = {name: warm(s, c)[0] for name, c in (("add", hlx.kernels.add(x, y)), ("mul", hlx.kernels.mul(x, y)),
                                            ("softmax", hlx.kernels.softmax(hlx.collapse(rng.standard_normal((65536, 1024), dtype=np.float32)))))}
def timeit(label):
    out = {}
    for name, p in plans.items():
        for _ in range(20):
            s.execute(p)
        out[name] = statistics.median(s.execute(p).timings["gpu_ms"] for _ in range(30))
    print(label, {k: f"{v:.4f} ms" for k, v in out.items()}, "|", smi(), flush=True)
timeit("cold, no CUDA:")
warm_up(s)
timeit("after warm-up, no CUDA:")
import torch
torch.zeros(1, device="cuda")
timeit("CUDA context alive:")
t = torch.empty(64 << 20, device="cuda"); t2 = t * 2; torch.cuda.synchronize()
timeit("after a torch kernel:")

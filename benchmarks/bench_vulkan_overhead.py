"""Host overhead of the Vulkan backend next to torch (CUDA) measured in the same run.

1. A warm ``hlx.run`` of a tiny kernel (add of 256 float32) whose inputs are already resident on the
   device, split into the full round trip and the backend's share (``Session.execute`` of the planned
   contract), against a torch tiny op + ``.cpu()`` (the result on the host, as hlx.run gives it) and a
   torch tiny op + ``torch.cuda.synchronize()``.
2. Dispatches per second inside one recorded 902 (a chain of ``--stages`` dependent adds, one submit),
   against the same number of torch ops followed by one synchronize.
3. The floor of any round trip on the device: an empty command buffer submitted and its fence polled
   (HLX_VULKAN_SPIN_US, the default) or waited for in vkWaitForFences alone.
Goals: the round trip within 1.5x torch's op + .cpu(); Session.execute within 2x the polled floor.
Without torch/CUDA the torch columns are skipped.
Runs anywhere Vulkan does (lavapipe too; the ratios only mean something on a GPU).

    .venv/bin/python benchmarks/bench_vulkan_overhead.py [--repeat 2000] [--stages 64] [--device 0]
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
from _common import cuda_torch, per_call_us

import hlx
from hlx.kernels import add, pipeline, stage
from hlx_core.device.waiting import SpinBudget
from hlx_core.planner import plan as make_plan

from hlx_vulkan_raw.commands import Recorder


def torch_peer(n: int, stages: int, repeat: int) -> tuple[float, float, float] | None:
    """(µs per tiny op + .cpu(), per tiny op + synchronize, per ``stages`` ops + one synchronize), or None."""
    torch = cuda_torch()
    if torch is None:
        return None
    a = torch.rand(n, device="cuda")
    b = torch.rand(n, device="cuda")

    def to_host():
        a.add(b).cpu()

    def one():
        a.add(b)
        torch.cuda.synchronize()

    def chain():
        x = a
        for _ in range(stages):
            x = x.add(b)
        torch.cuda.synchronize()

    return per_call_us(to_host, repeat), per_call_us(one, repeat), per_call_us(chain, max(repeat // stages, 20))


def empty_submit(core) -> Callable[[], None]:
    """One submit of an empty command buffer and the wait for its fence: the floor of any round trip."""
    sub = core.submitter
    cb = sub.command_buffer()
    Recorder(cb, one_time=False).end()
    return lambda: sub.wait(sub.submit([cb]))


def ratio(ours: float, peer: float | None) -> str:
    return f"{ours / peer:6.2f}x" if peer else "   n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="calls timed per figure")
    parser.add_argument("--stages", type=int, default=64, help="dependent dispatches in the 902")
    parser.add_argument("--n", type=int, default=256, help="elements of the tiny tensors")
    parser.add_argument("--device", default=None, help="Vulkan device (index, name or UUID)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    a = hlx.collapse(rng.random(args.n, dtype=np.float32))
    b = hlx.collapse(rng.random(args.n, dtype=np.float32))
    tiny = add(a, b)
    chain = pipeline([add(a, b)] + [add(stage(i), b) for i in range(args.stages - 1)])

    first = hlx.run(tiny, backend="vulkan", device=args.device, memo=False)
    print(f"device: {first.device}")
    run_us = per_call_us(lambda: hlx.run(tiny, backend="vulkan", device=args.device, memo=False), args.repeat)

    from hlx_vulkan_raw import VulkanBackend
    session = VulkanBackend().open(args.device)
    try:
        p_tiny, p_chain = make_plan(tiny), make_plan(chain)
        session.execute(p_tiny)
        exec_us = per_call_us(lambda: session.execute(p_tiny), args.repeat)
        gpu_us = session.execute(p_tiny).timings.get("gpu_ms", float("nan")) * 1e3
        session.execute(p_chain)
        chain_us = per_call_us(lambda: session.execute(p_chain), max(args.repeat // 10, 50))
        chain_gpu_us = session.execute(p_chain).timings.get("gpu_ms", float("nan")) * 1e3
        submits, runs = session.core.submitter.submits, session.runs
        submitter = session.core.submitter
        floor_us = per_call_us(empty_submit(session.core), args.repeat)
        spin, submitter.spin = submitter.spin, SpinBudget(0, 0)
        blocking_us = per_call_us(empty_submit(session.core), args.repeat)
        submitter.spin = spin
    finally:
        session.close()

    peer = torch_peer(args.n, args.stages, args.repeat)
    t_host, t_one, t_chain = peer if peer else (None, None, None)
    nan = float("nan")
    print(f"\n{'measure':44s} {'hlx µs':>10s} {'peer µs':>10s} {'ratio':>8s}  peer")
    print(f"{'hlx.run warm, resident inputs (round trip)':44s} {run_us:10.1f} "
          f"{t_host or nan:10.1f} {ratio(run_us, t_host)}  torch op + .cpu() (goal 1.5x)")
    print(f"{'':44s} {'':10s} {t_one or nan:10.1f} {ratio(run_us, t_one)}  torch op + synchronize")
    print(f"{'  of which Session.execute':44s} {exec_us:10.1f} {floor_us:10.1f} {ratio(exec_us, floor_us)}  "
          "the polled floor below (goal 2x)")
    print(f"{'  of which GPU time (timestamps)':44s} {gpu_us:10.1f}")
    print(f"{'empty submit + fence polled (the floor)':44s} {floor_us:10.1f} {t_one or nan:10.1f} "
          f"{ratio(floor_us, t_one)}  torch op + synchronize")
    print(f"{'empty submit + vkWaitForFences only':44s} {blocking_us:10.1f}")
    print(f"{f'{args.stages}-stage 902, one submit':44s} {chain_us:10.1f} "
          f"{t_chain or nan:10.1f} {ratio(chain_us, t_chain)}  torch ops + one synchronize")
    print(f"\ndispatches/s in one recorded 902: {args.stages / chain_us * 1e6:,.0f} wall, "
          f"{args.stages / chain_gpu_us * 1e6:,.0f} GPU-timed"
          + (f"; torch ops/s with one sync: {args.stages / t_chain * 1e6:,.0f}" if t_chain else ""))
    print(f"vkQueueSubmit calls: {submits} for {runs} executes")
    if peer is None:
        print("torch with CUDA not available: peer columns skipped")


if __name__ == "__main__":
    main()

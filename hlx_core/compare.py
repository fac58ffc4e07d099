"""``hlx.compare``: one contract on several backends, each output held to the CPU reference.

The reference runs every stage's NumPy reference from the kernel registry (what the ``cpu`` backend runs)
and carries each kernel's declared tolerance (``KernelSpec.tolerance``) from stage to stage, so every
output gets a bound on its distance from exact arithmetic. An output that only ``exact`` kernels made
(integer arithmetic, add, mul, relu, transpose, the fixed-order reduce_sum) must equal the reference bit
for bit on every backend, the CPU included; any other must lie within twice its bound of the reference
element by element (both are within the bound of the exact answer), and a kernel that declares no
tolerance is held to bit equality. A ``ParityReport`` says, per backend and output, whether the bytes are
equal, the largest absolute and relative error, the tolerance and how much of it was used, and pass/fail;
``hlx parity FILE`` prints it as a table, and the conformance kit (``hlx_core.conformance``) applies the
same verdict to every library kernel and pipeline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hlx_core import runtime
from hlx_core.cas import api as cas
from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError, HLXError
from hlx_core.kernels.spec import KernelSpec
from hlx_core.plan import OutputRef, Stage, StageRef
from hlx_core.planner import plan as make_plan
from hlx_core.registry import kernel_registry


@dataclass(frozen=True, repr=False)
class Reference:
    """A contract's CPU reference: its outputs and their handles, whether each must be matched bit for bit
    (``exact``), and each element's bound on its distance from exact arithmetic (``bounds``; None where a
    kernel on the way declares no tolerance). ``check`` holds a backend's run of the contract to it."""

    contract: Handle
    arrays: tuple[np.ndarray, ...]
    handles: tuple[Handle, ...]
    exact: tuple[bool, ...]
    bounds: tuple[np.ndarray | None, ...]
    kernels: tuple[str, ...]  # the kernels of the plan's stages, in order
    source: Any = field(compare=False)  # the contract as given (a dict), what the backends run

    def __repr__(self) -> str:
        return f"Reference({self.contract[:24]}…, {len(self.arrays)} output(s), exact={list(self.exact)})"


@dataclass(frozen=True)
class OutputCheck:
    """One output of one backend against the reference. ``tolerance`` is the largest difference any element
    was allowed (0.0 where bit equality is required); ``margin`` the largest ratio of an element's difference
    to its allowance (0 when bit-equal, at most 1 to pass, inf for a difference where none is allowed)."""

    output: int
    handle: Handle
    reference: Handle
    bitwise_equal: bool
    max_abs_error: float
    max_rel_error: float
    exact: bool
    declared: bool  # the kernels declare a tolerance (or exactness) for this output
    tolerance: float
    margin: float
    passed: bool
    problem: str = ""

    def describe(self) -> str:
        if self.passed:
            return f"output {self.output}: " + ("bit-equal" if self.bitwise_equal else
                                                f"within tolerance (margin {self.margin:.3g})")
        return f"output {self.output}: {self.problem}"


@dataclass(frozen=True)
class BackendCheck:
    """A backend's run of the contract: one ``OutputCheck`` per output, or the HLXError it raised."""

    backend: str
    device: str
    outputs: tuple[OutputCheck, ...]
    error_code: str = ""
    error: str = ""
    result: runtime.Result | None = field(default=None, compare=False, repr=False)  # the run, when it ran

    @property
    def passed(self) -> bool:
        return not self.error_code and all(o.passed for o in self.outputs)

    def describe(self) -> str:
        """One line per output that failed (or the error), for test failures and logs."""
        if self.error_code:
            return f"{self.backend}: [{self.error_code}] {self.error}"
        lines = [o.describe() for o in self.outputs if not o.passed] or ["every output passed"]
        return f"{self.backend} ({self.device}): " + "; ".join(lines)


@dataclass(frozen=True)
class ParityReport:
    """What ``compare`` returns: the contract, the reference outputs and every backend's check."""

    contract: Handle
    reference: tuple[Handle, ...]
    kernels: tuple[str, ...]
    backends: tuple[BackendCheck, ...]

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.backends)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready: a non-finite number becomes None)."""
        def number(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "contract": str(self.contract), "reference": [str(h) for h in self.reference],
            "kernels": list(self.kernels), "passed": self.passed,
            "backends": [{
                "backend": b.backend, "device": b.device, "passed": b.passed,
                "error_code": b.error_code or None, "error": b.error or None,
                "outputs": [{
                    "output": o.output, "handle": str(o.handle), "bitwise_equal": o.bitwise_equal,
                    "max_abs_error": number(o.max_abs_error), "max_rel_error": number(o.max_rel_error),
                    "exact": o.exact, "declared": o.declared, "tolerance": number(o.tolerance),
                    "margin": number(o.margin), "passed": o.passed, "problem": o.problem or None,
                } for o in b.outputs],
            } for b in self.backends],
        }

    def table(self) -> str:
        """The report as a plain-text table, one row per backend and output."""
        head = [f"contract {self.contract}", f"kernels  {', '.join(self.kernels)}"]
        head += [f"output {k}: reference {h}" for k, h in enumerate(self.reference)]
        rows = [("backend", "device", "output", "bitwise", "max abs", "max rel", "tolerance", "margin", "result")]
        for b in self.backends:
            device = b.device if len(b.device) <= 36 else b.device[:35] + "…"
            if b.error_code:
                rows.append((b.backend, device or "-", "-", "-", "-", "-", "-", "-", f"FAIL [{b.error_code}]"))
            for o in b.outputs:
                rows.append((b.backend, device, str(o.output), "yes" if o.bitwise_equal else "no",
                             _num(o.max_abs_error), _num(o.max_rel_error), _tolerance(o), _num(o.margin),
                             "pass" if o.passed else "FAIL"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        notes = [f"{b.backend}: [{b.error_code}] {b.error}" for b in self.backends if b.error_code]
        notes += [f"{b.backend} output {o.output}: {o.problem}" for b in self.backends for o in b.outputs
                  if o.problem]
        verdict = "every backend matches the reference" if self.passed else "FAILED"
        return "\n".join([*head, "", *lines, *([""] + notes if notes else []), "", verdict])


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.3g}"


def _tolerance(o: OutputCheck) -> str:
    if o.exact:
        return "bitwise"
    return f"±{o.tolerance:.3g}" if o.declared else "bitwise (none declared)"


# -- the reference --------------------------------------------------------------------------------------

def _float64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _stage_bounds(spec: KernelSpec, inputs: list[np.ndarray], errors: list[np.ndarray], stage: Stage,
                  results: list[np.ndarray], where: str) -> list[np.ndarray]:
    """The stage's declared bounds, each of its output's shape. A tolerance is plugin code: one that raises
    or returns the wrong count or shapes is refused like a failing reference."""
    try:
        made = spec.tolerance([_float64(a) for a in inputs], errors, dict(stage.params), stage.output_refs)
        if not isinstance(made, (list, tuple)) or len(made) != len(results):
            raise ValueError(f"it must return a list of {len(results)} array(s)")
        return [np.broadcast_to(_float64(m), r.shape) for m, r in zip(made, results)]
    except HLXError:
        raise
    except Exception as exc:
        raise BackendError("E_REFERENCE_OUTPUT", f"{where} ({spec.name}): the kernel's tolerance failed: "
                           f"{type(exc).__name__}: {exc}") from exc


def reference(contract: Any, store: Any = None) -> Reference:
    """The CPU reference of ``contract`` (a contract, a helper's return value or a stored contract's
    handle) with its tolerances: every stage's NumPy reference runs (E_NO_REFERENCE for a kernel without
    one), and each stage's bounds follow from its kernel's tolerance and its inputs' bounds."""
    store = store if store is not None else cas.get_default_store()
    source = runtime.as_contract(contract, store)
    plan = make_plan(source, store)
    values: dict[tuple[int, int], np.ndarray] = {}
    bounds: dict[tuple[int, int], np.ndarray | None] = {}
    exact: dict[tuple[int, int], bool] = {}
    for s, stage in enumerate(plan.stages):
        spec = kernel_registry().get(stage.kernel_name)
        reads = [b for b in stage.bindings if not isinstance(b, OutputRef)]
        inputs = stage.input_arrays(lambda r: values[(r.stage, r.output)])
        errors = [bounds[(b.stage, b.output)] if isinstance(b, StageRef) else np.broadcast_to(0.0, np.shape(a))
                  for b, a in zip(reads, inputs)]
        from_exact = all(exact[(b.stage, b.output)] for b in reads if isinstance(b, StageRef))
        where = f"stage {s}"
        results = spec.run(inputs, stage, where=where)
        stage_bounds: list[np.ndarray | None] = [None] * len(results)
        if spec.tolerance is not None and all(e is not None for e in errors):
            stage_bounds = list(_stage_bounds(spec, inputs, errors, stage, results, where))
        for j, array in enumerate(results):
            values[(s, j)], bounds[(s, j)], exact[(s, j)] = array, stage_bounds[j], spec.exact and from_exact
    arrays = tuple(values[key] for key in plan.outputs)
    handles = tuple(cas.collapse(a, store=store, behind=True) for a in arrays)
    return Reference(plan.key, arrays, handles, tuple(exact[k] for k in plan.outputs),
                     tuple(bounds[k] for k in plan.outputs), tuple(st.kernel_name for st in plan.stages), source)


# -- holding a backend to it ----------------------------------------------------------------------------

def _same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise bit equality of two arrays of one dtype and shape."""
    if a.dtype.kind in "fc":
        words = np.dtype(f"u{a.dtype.itemsize}")
        return np.ascontiguousarray(a).view(words) == np.ascontiguousarray(b).view(words)
    return a == b


def _problem(ref: Reference, k: int, got: np.ndarray, diff: np.ndarray, allowed: np.ndarray | None,
             score: np.ndarray, differing: int) -> str:
    """Why output ``k`` failed, naming its worst element."""
    want = ref.arrays[k]
    worst = np.unravel_index(int(np.argmax(score)), score.shape)
    at = f"at {tuple(int(i) for i in worst)} (got {got[worst]!r}, reference {want[worst]!r})"
    if allowed is None:
        why = "exact kernels" if ref.exact[k] else "a kernel that declares no tolerance"
        return (f"not bit-equal to the reference, as {why} must be: {differing} element(s) differ, the largest "
                f"by {float(diff[worst]):.3g} {at}")
    return (f"outside the tolerance: an error of {float(diff[worst]):.3g} where {float(allowed[worst]):.3g} is "
            f"allowed {at}")


def _output_check(ref: Reference, k: int, got: np.ndarray, handle: Handle) -> OutputCheck:
    """Output ``k`` of a run (of the plan's dtype and shape: the runtime refuses any other) against ``ref``."""
    want, exact, bound = ref.arrays[k], ref.exact[k], ref.bounds[k]
    base: dict[str, Any] = dict(output=k, handle=handle, reference=ref.handles[k], exact=exact,
                                declared=exact or bound is not None)
    same = _same_bits(got, want)
    equal = bool(same.all())
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.where(same, 0.0, np.abs(_float64(got) - _float64(want)))
        diff[np.isnan(diff)] = math.inf  # a NaN on one side only
        rel = np.where(diff == 0, 0.0, diff / np.abs(_float64(want)))
        if exact or bound is None:
            allowed, tolerance, score = None, 0.0, diff
            margin = 0.0 if equal else math.inf
        else:
            allowed = 2 * bound
            tolerance = float(allowed.max()) if allowed.size else 0.0
            score = np.where(diff == 0, 0.0, diff / allowed)
            score[np.isnan(score)] = math.inf  # an allowance that is itself not a number
            margin = float(score.max()) if score.size else 0.0
    passed = equal if allowed is None else margin <= 1.0
    return OutputCheck(**base, bitwise_equal=equal, max_abs_error=float(diff.max()) if diff.size else 0.0,
                       max_rel_error=float(rel.max()) if rel.size else 0.0, tolerance=tolerance, margin=margin,
                       passed=passed,
                       problem="" if passed else _problem(ref, k, got, diff, allowed, score, int((~same).sum())))


def check(ref: Reference, backend: str, *, store: Any = None) -> BackendCheck:
    """Run the contract of ``ref`` on ``backend`` (afresh: memo off) and hold each output to ``ref``. An
    HLXError of the run is recorded in the check (E_BACKEND_UNKNOWN, a name no plugin has, is raised)."""
    try:
        result = runtime.run(ref.source, backend=backend, store=store, memo=False)
    except HLXError as exc:
        if exc.code == "E_BACKEND_UNKNOWN":
            raise
        return BackendCheck(backend, "", (), exc.code, exc.message)
    checks = tuple(_output_check(ref, k, a, h) for k, (a, h) in enumerate(zip(result.arrays(), result.outputs)))
    return BackendCheck(result.backend, result.device, checks, result=result)


def _names(backends: Sequence[str] | None) -> list[str]:
    if backends is None:
        return runtime.backends()
    if isinstance(backends, str) or not isinstance(backends, (list, tuple)) or \
            not all(isinstance(b, str) for b in backends):
        raise BackendError("E_BACKEND_UNKNOWN", f"backends must be a list of backend names, got {backends!r:.80}")
    return list(dict.fromkeys(backends))


def compare(contract: Any, backends: Sequence[str] | None = None, *, store: Any = None) -> ParityReport:
    """Run ``contract`` on each of ``backends`` (default: every available one) and hold every output to
    the CPU reference: bit equality where the kernels are exact, the kernels' tolerance elsewhere.

    A backend whose run raises an HLXError (unavailable, unsupported on its device, ...) gets a failed row
    with the error; an unknown backend name raises E_BACKEND_UNKNOWN."""
    store = store if store is not None else cas.get_default_store()
    names = _names(backends)
    ref = reference(contract, store)
    return ParityReport(ref.contract, ref.handles, ref.kernels, tuple(check(ref, n, store=store) for n in names))

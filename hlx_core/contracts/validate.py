"""``validate(contract)``: check a contract's structure and return its normalised copy.

A contract is a map with exactly one key, its id as a digit string. Normalising (tuples to lists, NumPy
scalars to Python ones, reflected fields filled in) means equal contracts collapse to equal handles however
they were written. Handles inside are checked for form only; resolving them is the runtime's job.
"""
from __future__ import annotations

from typing import Any, Callable

from hlx_core.contracts.fields import STRUCTURE, fail
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG, VULKAN_SHADER
from hlx_core.contracts.schemas import validate_900, validate_901, validate_902
from hlx_core.contracts.value import VALUE_CONTRACTS, validate_value
from hlx_core.errors import ContractError

_COMPUTE: dict[str, Callable[[Any, str], dict]] = {VULKAN_SHADER: validate_900, COMPUTE_KERNEL: validate_901,
                                                   PIPELINE_CONFIG: validate_902}
KNOWN_IDS = tuple(sorted(_COMPUTE.keys() | VALUE_CONTRACTS.keys(), key=int))


def contract_id(contract: Any) -> str:
    """The id of a contract-shaped value; E_CONTRACT_STRUCTURE unless it is a single-key map whose key is a
    digit string."""
    if not isinstance(contract, dict):
        raise fail(STRUCTURE, "", f"a contract is a map {{'<id>': {{fields}}}}, got {type(contract).__name__}")
    if len(contract) != 1:
        raise fail(STRUCTURE, "", f"a contract has exactly one key (its id), got {len(contract)}: "
                                  f"{sorted(map(str, contract))[:5]}")
    (cid,) = contract
    if not (isinstance(cid, str) and cid.isascii() and cid.isdigit()):
        raise fail(STRUCTURE, "", f"contract id {cid!r} is not a digit string such as '901'")
    return cid


def validate(contract: Any) -> dict:
    """The normalised copy of ``contract``, or ContractError (E_CONTRACT_*) with the offending field's path.
    A 900's SPIR-V is reflected: bad SPIR-V or a missing entry point raise SpirvError E_SPIRV_INVALID."""
    cid = contract_id(contract)
    fields = contract[cid]
    if cid in _COMPUTE:
        return {cid: _COMPUTE[cid](fields, cid)}
    if cid in VALUE_CONTRACTS:
        return {cid: validate_value(cid, fields, cid)}
    raise ContractError("E_CONTRACT_UNKNOWN", f"unknown contract id {cid!r}; known: {', '.join(KNOWN_IDS)}",
                        path=cid)

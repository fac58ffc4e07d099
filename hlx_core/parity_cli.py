"""``hlx parity FILE`` and ``hlx conformance NAME``: the command-line faces of ``hlx.compare`` and the
conformance kit. Both exit 0 only when every backend met the reference."""
from __future__ import annotations

import argparse
import json

from hlx_core.cas import api as cas
from hlx_core.compare import compare
from hlx_core.conformance import runner
from hlx_core.input_files import load_contract


def cmd_parity(args: argparse.Namespace) -> int:
    """The contract on the backends named (default: every available one) against the CPU reference."""
    store = cas.get_default_store()
    contract = load_contract(args.file, store, args.allow_path)
    report = compare(contract, backends=args.backend, store=store)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0 if report.passed else 1


def cmd_conformance(args: argparse.Namespace) -> int:
    """The conformance kit on each backend named, in this process: pytest's exit status."""
    extra = [*(["-k", args.k] if args.k else []), *(["-x"] if args.exitfirst else []),
             *(["-v"] if args.verbose else ["-q"])]
    return runner.run(args.backend, extra)

"""The pytest plugin of the conformance kit (entry point ``pytest11``). Every pytest run where HLX is
installed loads it, so it imports nothing of HLX (the package only names the kit's file) and does nothing
unless ``--hlx-backend`` is given.

``--hlx-backend NAME`` (repeatable) adds the kit's tests to the run (alone when no paths are named) and
parametrizes every test that takes the ``hlx_backend`` fixture with the names given, so a plugin's own
tests can take it too.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hlx_core.conformance import TESTS

KIT = TESTS.resolve()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hlx", "HLX conformance kit")
    group.addoption("--hlx-backend", action="append", default=[], metavar="NAME",
                    help="run HLX's conformance kit (every library kernel and pipeline against the CPU "
                         "reference) on the backend NAME; repeatable")


def _backends(config: pytest.Config) -> list[str]:
    return list(dict.fromkeys(config.getoption("hlx_backend", default=None) or []))


def pytest_configure(config: pytest.Config) -> None:
    if not _backends(config):
        return
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(KIT)]  # no paths named: the kit alone, not the project's testpaths
    elif not any(Path(arg.split("::")[0]).resolve() == KIT for arg in config.args):
        config.args = [*config.args, str(KIT)]


def pytest_report_header(config: pytest.Config) -> str | None:
    names = _backends(config)
    return f"hlx conformance kit: {', '.join(names)} against the CPU reference" if names else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = _backends(metafunc.config)
    if names and "hlx_backend" in metafunc.fixturenames:
        metafunc.parametrize("hlx_backend", names)


@pytest.fixture
def hlx_backend() -> str:
    """The backend under test; parametrized by --hlx-backend, so this body runs only without it."""
    pytest.skip("the conformance kit runs with --hlx-backend NAME")

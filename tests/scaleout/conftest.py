"""One scale-out topology per test module (starting one takes a minute on a small
machine), torn down after the module; its logs are printed when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaleout.topology import Topology


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scaleout-clips")


@pytest.fixture(scope="module")
def topology_env() -> dict[str, str]:
    """Variables a module adds to every process's environment."""
    return {}


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory, topology_env: dict[str, str]
) -> Iterator[Topology]:
    topology = Topology(tmp_path_factory.mktemp("scaleout"), extra_env=topology_env)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    topology = getattr(item, "funcargs", {}).get("topology")
    if report.failed and isinstance(topology, Topology):
        for name, service in topology.services.items():
            report.sections.append((f"log of {name}", service.log_tail(60)))

"""Shared fixtures: real Redis servers on free loopback ports, the data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# scikit-learn's estimator checks include an array-API check that skips unless SciPy was
# imported with this set; every test must run (in CI a skip fails the run), so it is set
# before anything imports SciPy. NumPy inputs behave the same with it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from servers import DATA_MISSING, RedisClusterServers, RedisServer, data_dir, data_required


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    """A redis-py client on a flushed server."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def _redis_cluster_servers():
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster(_redis_cluster_servers):
    """One three-master Cluster for the session, emptied before each test that uses it."""
    _redis_cluster_servers.flushall()
    return _redis_cluster_servers


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return data_dir()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and DATA_MISSING in report.longrepr[2]:
        # Every skip for want of the data is reported at data_dir, so that pytest's
        # summary folds them into one line saying how to get the data.
        report.longrepr = (
            data_dir.__code__.co_filename,
            data_dir.__code__.co_firstlineno,
            report.longrepr[2],
        )


def _skipped_for_data(reporter) -> int:
    return sum(DATA_MISSING in str(r.longrepr) for r in reporter.stats.get("skipped", []))


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or session.exitstatus != 0:
        return
    skipped = len(reporter.stats.get("skipped", []))
    for_data = _skipped_for_data(reporter)
    if for_data and data_required():
        # CI=true or ANOMALY_REQUIRE_DATA=1: the labelled data must be there.
        reporter.write_line(
            f"{for_data} test(s) skipped for want of the labelled data, which this run requires "
            "(CI=true or ANOMALY_REQUIRE_DATA=1)",
            red=True,
        )
        session.exitstatus = 1
    elif os.environ.get("CI") and skipped - for_data:
        # In CI a skipped test is a test that did not run: the run fails.
        reporter.write_line(f"CI: {skipped - for_data} test(s) skipped; every test must run in CI", red=True)
        session.exitstatus = 1

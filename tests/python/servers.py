"""Real servers for the tests: redis-server on free loopback ports, and a
three-master Redis Cluster joined with ``redis-cli --cluster create``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536 and _port_is_free(port + 10000):
            return port


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package redis-server; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on {HOST}:{port} within {timeout}s")


class RedisServer:
    """One redis-server process on 127.0.0.1; can be killed and restarted on the same port."""

    def __init__(self, *extra_args: str, port: int | None = None, password: str | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.port = port or free_port()
        self.password = password
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix="anomaly-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", self.dir, "--protected-mode", "no", *self.extra_args,
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(self.process, self.port)
        except RuntimeError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, **kwargs):
        import redis

        return redis.Redis(host=HOST, port=self.port, password=self.password, **kwargs)


class RedisClusterServers:
    """Redis Cluster nodes joined with ``redis-cli --cluster create``: three masters, and
    ``replicas`` replicas of each (a replica takes over when its master dies for longer
    than ``node_timeout`` milliseconds)."""

    def __init__(self, replicas: int = 0, node_timeout: int = 2000) -> None:
        self.cli = require_binary("redis-cli")
        self.replicas = replicas
        self.nodes = [
            RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", str(node_timeout), port=free_cluster_port())
            for _ in range(3 * (1 + replicas))
        ]  # fmt: skip

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def start(self) -> RedisClusterServers:
        try:
            self._start()
        except Exception:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{n.port}" for n in self.nodes]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_until_ok([n.port for n in self.nodes])
        if self.replicas:
            # Every replica must have finished its first sync before a master may be killed.
            wait_for(lambda: all(self.node_info(n.port).get("master_link_status", "up") == "up"
                                 for n in self.nodes), 60, "replicas in sync")  # fmt: skip

    def run_cli(self, port: int, *args: str, timeout: float = 60) -> str:
        return subprocess.run(
            [self.cli, "-h", HOST, "-p", str(port), *args],
            capture_output=True, text=True, check=False, timeout=timeout,
        ).stdout  # fmt: skip

    def node_info(self, port: int) -> dict[str, str]:
        """``INFO replication`` of one node (empty when it does not answer)."""
        lines = self.run_cli(port, "info", "replication", timeout=10).splitlines()
        return dict(line.strip().split(":", 1) for line in lines if ":" in line)

    def wait_until_ok(self, ports: list[int], timeout: float = 60) -> None:
        """Until every node of ``ports`` answers ``cluster_state:ok`` and all agree on the masters."""

        def ok() -> bool:
            if not all("cluster_state:ok" in self.run_cli(p, "cluster", "info", timeout=10) for p in ports):
                return False
            views = {frozenset(self.masters(p)) for p in ports}
            return len(views) == 1

        wait_for(ok, timeout, "cluster_state:ok on every node")

    def masters(self, port: int) -> dict[int, tuple[int, int]]:
        """The masters as node ``port`` sees them: port -> its first slot range."""
        out = {}
        for line in self.run_cli(port, "cluster", "nodes", timeout=10).splitlines():
            fields = line.split()
            if len(fields) > 8 and "master" in fields[2] and "fail" not in fields[2]:
                lo, _, hi = fields[8].partition("-")
                out[int(fields[1].split("@")[0].rsplit(":", 1)[1])] = (int(lo), int(hi or lo))
        return out

    def flushall(self) -> None:
        """Empty every master (a replica follows its master)."""
        for port in self.masters(self.port):
            self.run_cli(port, "flushall", timeout=10)

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def client(self, **kwargs):
        from redis.cluster import RedisCluster

        return RedisCluster(host=HOST, port=self.port, **kwargs)


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def wait_for_workers(client, proc: subprocess.Popen, log: Path, n: int, timeout: float) -> set[int]:
    """Poll ``/health`` through ``client`` (new connections per request) until ``n`` distinct
    worker pids of the ``serve --workers`` process ``proc`` have answered; its ``log`` is
    shown when it dies or the time runs out."""
    import httpx

    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < n:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"only {pids} answered: {log.read_text()}"
        try:
            pids.add(client.get("/health").json()["worker_pid"])
        except httpx.TransportError:
            time.sleep(0.1)
    return pids


def package_env() -> dict[str, str]:
    """The environment for a subprocess that must import the package the tests import
    (the installed one in CI, python/ in a developer's tree)."""
    import anomaly_detection

    root = str(Path(anomaly_detection.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports the package the tests import."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=package_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_processes(target, arg_tuples: list[tuple], timeout: float = 300) -> list:
    """Run ``target(*args, queue)`` in one spawned process per ``args``; what each put
    on the queue (one item each), once every process exited cleanly."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for args in arg_tuples]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def data_path() -> Path:
    """Where the labelled data should be: ``$ANOMALY_DATA_DIR``, else ``../shared/data`` beside the project."""
    env = os.environ.get("ANOMALY_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


#: Begins the reason of every skip for want of the labelled data (conftest counts them by it).
DATA_MISSING = "labelled data not found"


def data_required() -> bool:
    """A missing data folder fails the run under ``ANOMALY_REQUIRE_DATA=1``, or under ``CI``
    unless ``ANOMALY_REQUIRE_DATA=0`` says otherwise."""
    flag = os.environ.get("ANOMALY_REQUIRE_DATA", "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no")
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def data_dir() -> Path:
    """The labelled data folder; the calling test is skipped when it is absent (the run
    then fails at its end if the data is required, see conftest)."""
    path = data_path()
    if not path.is_dir():
        pytest.skip(
            f"{DATA_MISSING} at {path}: `bash scripts/get-data.sh` fetches it there "
            "(or into DIR, then set ANOMALY_DATA_DIR=DIR)"
        )
    return path

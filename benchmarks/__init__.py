"""The peer benchmark suite: every ``bench_*.py`` comparison in one command.

    python -m benchmarks [--quick] [--runs N] [--only NAME,...] [--output FILE]
    anomaly-detection bench [the same options]

Each benchmark script runs ``--runs`` times, each time in a fresh Python process with
``--json`` (and ``--quick`` in quick mode), and ends its output with one JSON line of
figures: ``{"bench": ..., "figures": [{"metric", "unit", "ours", "peer", ...}]}``.
The suite takes the median of every figure over the runs, computes the ratios (how
many times faster the package is than the peer), and writes ``benchmarks/RESULTS.md``
with the machine, the versions and the tables. A benchmark whose peer is not
installed is reported as not run: nothing is estimated in its place.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BENCHES", "Bench", "Outcome", "main", "render", "run_suite"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    """One peer comparison: a script in this folder and the modules its peers need."""

    name: str
    script: str
    peers: tuple[str, ...]
    what: str


BENCHES: tuple[Bench, ...] = (
    Bench(
        "detector",
        "bench_detector.py",
        (),
        "StatisticalAnomalyDetector vs pandas rolling (every classic method), pure Python and River",
    ),
    Bench("redis", "bench_redis.py", ("redis",), "detector on the Redis store vs the seed's pipeline"),
    Bench(
        "redis_paths",
        "bench_redis_paths.py",
        ("redis",),
        "the Redis store's worker threads vs redis.asyncio (ours against ours; run by hand: no --json)",
    ),
    Bench("forest", "bench_forest.py", ("sklearn",), "IsolationForest vs scikit-learn"),
    Bench("hst", "bench_hst.py", ("river", "sklearn"), "HalfSpaceTrees vs River"),
    Bench("sketches", "bench_sketches.py", ("datasketches",), "sketches vs Apache DataSketches"),
    Bench("api", "bench_api.py", ("fastapi", "uvicorn", "httpx"), "HTTP ingest vs a pure-Python detector"),
    Bench("ensemble", "bench_ensemble.py", (), "ensemble speed; NAB score vs published detectors"),
    Bench(
        "fingerprints",
        "bench_fingerprints.py",
        (),
        "fingerprint pipeline: alerts on simulated traffic, speed",
    ),
    Bench(
        "output_cache",
        "bench_output_cache.py",
        ("pandas",),
        "detect_batch's output cache vs NumPy allocation, beside pandas (run by hand: no --json)",
    ),
    Bench(
        "api_worker",
        "bench_api_worker.py",
        ("fastapi", "redis"),
        "one /api/batch request's CPU in process, by stage, against a base tree (run by hand: no --json)",
    ),
    Bench(
        "fork",
        "bench_fork.py",
        (),
        "os.fork() with the registries held across it vs not (run by hand: no --json)",
    ),
    Bench(
        "marks",
        "bench_marks.py",
        ("redis",),
        "the append script's server time with the writers' marks, against main's (run by hand: no --json)",
    ),
    Bench(
        "warm_up",
        "bench_warm_up.py",
        ("redis",),
        "what warming_up costs a Redis detect, before and after (run by hand: no --json)",
    ),
    Bench(
        "warm_up_memory",
        "bench_warm_up_memory.py",
        ("redis",),
        "detect and stats with the warm-up memory checked against Redis, before and after (run by hand: no --json)",
    ),
)

# The distribution that provides each importable peer module (for the versions table).
DISTRIBUTIONS = {
    "numpy": "numpy",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "river": "river",
    "datasketches": "datasketches",
    "redis": "redis",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "httpx": "httpx",
}


@dataclass
class Outcome:
    """What happened to one benchmark: ``status`` is ``ok``, ``absent``, ``missing-peer``,
    ``no-json`` or ``failed``; ``runs`` holds the JSON document of each successful run."""

    bench: Bench
    status: str
    detail: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    last_output: str = ""


def all_benches(folder: Path = HERE) -> list[Bench]:
    """The known benchmarks, then any other ``bench_*.py`` in ``folder`` (run with no peer check)."""
    known = {b.script for b in BENCHES}
    extra = [
        Bench(p.stem.removeprefix("bench_"), p.name, (), "(not described)")
        for p in sorted(folder.glob("bench_*.py"))
        if p.name not in known
    ]
    return [*BENCHES, *extra]


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _package_path() -> str:
    """The folder holding the ``anomaly_detection`` package this process imports."""
    spec = importlib.util.find_spec("anomaly_detection")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "anomaly_detection is not importable: install it (pip install .) or build it in place "
            "(scripts/dev-build.sh) and run with PYTHONPATH=python"
        )
    return str(Path(spec.origin).resolve().parents[1])


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_path(), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _last_json(stdout: str, name: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("figures"), list):
                return doc
    return None


def run_bench(
    bench: Bench, *, folder: Path, quick: bool, runs: int, timeout: float, log: Any = sys.stderr
) -> Outcome:
    """Run one benchmark ``runs`` times, each in a fresh interpreter."""
    path = folder / bench.script
    if not path.is_file():
        return Outcome(bench, "absent", f"{bench.script} is not in this checkout")
    if missing := missing_modules(bench.peers):
        names = ", ".join(f"`{m}`" for m in missing)
        return Outcome(
            bench, "missing-peer", f"peer {names} not installed (pip install 'anomaly-detection-core[bench]')"
        )
    source = path.read_text(encoding="utf-8")
    if '"--json"' not in source:
        return Outcome(bench, "no-json", f"{bench.script} has no --json option yet")
    args = [sys.executable, str(path), "--json", *(["--quick"] if quick and '"--quick"' in source else [])]
    outcome = Outcome(bench, "ok")
    env = _child_env()
    for i in range(runs):
        print(f"  {bench.name}: run {i + 1}/{runs} ...", end="", file=log, flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                args, cwd=folder.parent, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            print(" timed out", file=log)
            return Outcome(bench, "failed", f"run {i + 1} took more than {timeout:g} s", outcome.runs)
        took = time.perf_counter() - start
        doc = _last_json(proc.stdout, bench.name)
        if proc.returncode != 0 or doc is None:
            print(f" failed (exit {proc.returncode})", file=log)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return Outcome(bench, "failed", f"exit {proc.returncode}: " + " / ".join(tail), outcome.runs)
        print(f" {took:.1f} s", file=log)
        outcome.runs.append(doc)
        outcome.seconds.append(took)
        outcome.last_output = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("{"))
    return outcome


def ratio(fig: dict[str, Any]) -> float | None:
    """How many times better the package is than the peer on one speed figure (None without a peer)."""
    ours, peer = fig.get("ours"), fig.get("peer")
    if fig.get("kind") == "quality" or not ours or not peer:
        return None
    return peer / ours if fig.get("better") == "lower" else ours / peer


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per metric, in first-run order: medians of ``ours``, ``peer`` and the ratio over the runs,
    and the ratio's range."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for doc in runs:
        for fig in doc["figures"]:
            by_metric.setdefault(fig["metric"], []).append(fig)
    out = []
    for metric, figs in by_metric.items():
        row = dict(figs[0])
        for key in ("ours", "peer"):
            values = [f[key] for f in figs if isinstance(f.get(key), (int, float))]
            row[key] = statistics.median(values) if values else None
        ratios = [r for f in figs if (r := ratio(f)) is not None]
        row["ratio"] = statistics.median(ratios) if ratios else None
        row["ratio_range"] = (min(ratios), max(ratios)) if ratios else None
        row["n_runs"] = len(figs)
        row["metric"] = metric.replace("|", "\\|")  # a markdown table cell
        out.append(row)
    return out


def fmt_value(value: float | None, unit: str) -> str:
    """A figure in a readable unit."""
    if value is None:
        return "-"
    if unit.endswith("/s"):
        base = unit[:-2]
        if value >= 1e6:
            return f"{value / 1e6:.2f} M {base}/s"
        if value >= 1e3:
            return f"{value / 1e3:.1f} k {base}/s"
        return f"{value:.0f} {base}/s"
    if unit == "s":
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "error":
        return f"{value:.2e}"
    if unit == "ROC-AUC":
        return f"{value:.4f}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _command(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        return "not installed"
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() or "unknown"


def machine_facts() -> dict[str, str]:
    """CPU, cores, load, OS, Python, and the commit of the checkout."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    commit = _command(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    if commit not in ("not installed", "unknown") and _command(
        ["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"]
    ) not in ("", "unknown"):
        commit += " (with uncommitted changes)"
    return {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores",
        "load average (1, 5, 15 min) at start": load,
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": commit,
    }


def versions() -> dict[str, str]:
    """Versions of the package, NumPy, every peer, and redis-server."""
    import anomaly_detection

    out = {"anomaly_detection": f"{anomaly_detection.__version__} ({_package_path()})"}
    out.update({dist: _version(dist) for dist in DISTRIBUTIONS.values()})
    out["redis-server"] = _command(["redis-server", "--version"]).split(" sha=")[0]
    return out


def render(
    outcomes: list[Outcome],
    *,
    quick: bool,
    runs: int,
    facts: dict[str, str],
    vers: dict[str, str],
    load_after: str = "",
    command: str = "python -m benchmarks",
) -> str:
    """The RESULTS.md text."""
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = (
        "quick (reduced sizes: a smoke-level figure)"
        if quick
        else "full (the sizes benchmarks/README.md reports)"
    )
    lines = [
        "# Peer benchmark results",
        "",
        (
            f"Written by `{command}` on {when}. Mode: {mode}. Each benchmark ran {runs} time(s), each "
            "run in a fresh process; every figure below is the **median over the runs** (each run itself "
            "takes the median or best of its own repeats), and *range* is the lowest and highest ratio seen. "
            "Ratios are how many times faster the package is than the peer on the same data in the same run "
            "(> 1: the package is faster)."
        ),
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in facts.items()),
    ]
    if load_after:
        lines.append(f"- load average at the end: {load_after}")
    lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in vers.items()]

    ok = [o for o in outcomes if o.status == "ok"]
    speed, internal, quality, alone = [], [], [], []
    for o in ok:
        for row in aggregate(o.runs):
            if row.get("kind") == "quality":
                quality.append((o.bench.name, row))
            elif row.get("peer") is None:
                alone.append((o.bench.name, row))
            elif row.get("kind") == "internal":  # two of our own methods, not a peer
                internal.append((o.bench.name, row))
            else:
                speed.append((o.bench.name, row))

    def ratio_table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
        out = [
            "",
            title,
            "",
            "| bench | comparison | ours | peer | ratio | range | target |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for name, r in rows:
            lo, hi = r["ratio_range"]
            out.append(
                f"| {name} | {r['metric']} | {fmt_value(r['ours'], r['unit'])} | "
                f"{fmt_value(r['peer'], r['unit'])} ({r.get('peer_name', 'peer')}) | **{r['ratio']:.2f}x** | "
                f"{lo:.2f}-{hi:.2f}x | {r.get('target', '')} |"
            )
        return out

    lines += ratio_table("## Speed against the peers", speed)
    if internal:
        lines += ratio_table("## Our methods against each other (same run; not a peer comparison)", internal)
    if quality:
        lines += [
            "",
            "## Quality in the same runs",
            "",
            "| bench | comparison | ours | peer | difference |",
            "|---|---|---:|---:|---:|",
        ]
        for name, r in quality:
            diff = r["ours"] - r["peer"] if r["peer"] is not None else None
            better = " (lower is better)" if r.get("better") == "lower" else ""
            lines.append(
                f"| {name} | {r['metric']}{better} | {fmt_value(r['ours'], r['unit'])} | "
                f"{fmt_value(r['peer'], r['unit'])} | {'-' if diff is None else f'{diff:+.4g}'} |"
            )
    if alone:
        lines += ["", "## Without a peer", "", "| bench | figure | ours | target |", "|---|---|---:|---|"]
        for name, r in alone:
            note = f" (peer `{r['missing']}` not installed)" if r.get("missing") else ""
            lines.append(
                f"| {name} | {r['metric']}{note} | {fmt_value(r['ours'], r['unit'])} | {r.get('target', '')} |"
            )
    lines += [
        "",
        "## Benchmarks run and not run",
        "",
        "| bench | what | status | seconds per run |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        status = "ran" if o.status == "ok" else f"**not run**: {o.detail}"
        secs = ", ".join(f"{s:.1f}" for s in o.seconds) or "-"
        lines.append(f"| {o.bench.name} | {o.bench.what} | {status} | {secs} |")
    for o in ok:
        lines += [
            "",
            f"<details><summary>{o.bench.script}: output of the last run</summary>",
            "",
            "```",
            o.last_output.strip(),
            "```",
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def run_suite(
    *,
    quick: bool,
    runs: int,
    only: list[str] | None = None,
    output: Path | None = None,
    timeout: float | None = None,
    folder: Path = HERE,
    command: str = "python -m benchmarks",
) -> tuple[str, list[Outcome]]:
    """Run the benchmarks (all, or those named in ``only``) and write the report to ``output``."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    if output is not None:  # before anything runs: the report is written after every benchmark
        from anomaly_detection.bench_cli import check_output

        check_output(output)
    benches = all_benches(folder)
    if only:
        known = {b.name for b in benches}
        if unknown := [n for n in only if n not in known]:
            raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
        benches = [b for b in benches if b.name in only]
    facts, vers = machine_facts(), versions()
    limit = timeout if timeout is not None else (300.0 if quick else 1200.0)
    outcomes = []
    for i, bench in enumerate(benches, 1):
        print(f"[{i}/{len(benches)}] {bench.name}: {bench.what}", file=sys.stderr, flush=True)
        outcome = run_bench(bench, folder=folder, quick=quick, runs=runs, timeout=limit)
        if outcome.status != "ok":
            print(f"  {bench.name}: not run: {outcome.detail}", file=sys.stderr)
        outcomes.append(outcome)
    load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    text = render(
        outcomes, quick=quick, runs=runs, facts=facts, vers=vers, load_after=load_after, command=command
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    return text, outcomes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m benchmarks`` and ``anomaly-detection bench``."""
    parser.add_argument(
        "--quick", action="store_true", help="reduced sizes (2.5-3.5 min in all on a busy 2-core box)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each benchmark; medians are reported")
    parser.add_argument("--only", help="comma-separated names, e.g. detector,forest (default: all)")
    parser.add_argument(
        "--output", type=Path, default=HERE / "RESULTS.md", help="report file (default benchmarks/RESULTS.md)"
    )
    parser.add_argument("--timeout", type=float, help="seconds per run before it counts as failed")
    parser.add_argument(
        "--list", action="store_true", help="list the benchmarks and whether their peers exist"
    )


def list_benches(folder: Path = HERE) -> str:
    rows = []
    for b in all_benches(folder):
        present = (folder / b.script).is_file()
        missing = missing_modules(b.peers)
        state = "absent" if not present else (f"peer missing: {', '.join(missing)}" if missing else "ready")
        rows.append((b.name, state, b.what))
    name_width = max(len(name) for name, _, _ in rows)  # from the content: a long name keeps the columns
    state_width = max(len(state) for _, state, _ in rows)
    return "\n".join(f"{name:<{name_width}}  {state:<{state_width}}  {what}" for name, state, what in rows)


def main(argv: list[str] | None = None, *, command: str = "python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=command, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        print(list_benches())
        return 0
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        _, outcomes = run_suite(
            quick=args.quick,
            runs=args.runs,
            only=only,
            output=args.output,
            timeout=args.timeout,
            command=command,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    ran = sum(o.status == "ok" for o in outcomes)
    print(f"{ran} of {len(outcomes)} benchmarks ran; report written to {args.output}")
    failed = [o.bench.name for o in outcomes if o.status == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)} (see the report)", file=sys.stderr)
    return 1 if failed else 0

"""``anomaly-detection bench``: run the peer benchmark suite of a source checkout.

The suite (``benchmarks/`` in the repository) is not part of the wheel: it needs the
ADBench and NAB data and the peers (River, scikit-learn, DataSketches). This command
finds the ``benchmarks`` folder (``--benchmarks-dir``, the current directory or one of
its parents, or the checkout this package was built in) and runs
``python -m benchmarks`` there with the same options, so the figures are measured with
the package this interpreter imports.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["add_bench_parser", "check_output", "find_benchmarks_dir"]

NOT_FOUND = """\
anomaly-detection bench: no benchmarks/ folder found{where}.
The peer benchmark suite is not installed with the package: it lives in the source repository.
To run it:
    git clone <the anomaly_detection repository> && cd anomaly_detection
    pip install '.[bench]'            # the package and the peers: river, scikit-learn, datasketches
    anomaly-detection bench --quick   # or: python -m benchmarks --quick
or point this command at a checkout with --benchmarks-dir PATH/benchmarks."""


def _is_suite(folder: Path) -> bool:
    return (folder / "__main__.py").is_file() and (folder / "__init__.py").is_file()


def find_benchmarks_dir(explicit: Path | None = None, start: Path | None = None) -> Path | None:
    """The ``benchmarks`` folder to run: ``explicit`` if given (None if it is not a suite),
    else the first of ``start`` (default: the current directory) and its parents holding
    ``benchmarks/``, else the checkout this module was loaded from."""
    if explicit is not None:
        return explicit.resolve() if _is_suite(explicit) else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_suite(folder / "benchmarks"):
            return folder / "benchmarks"
    source = Path(__file__).resolve().parents[2] / "benchmarks"  # python/anomaly_detection/ -> repo
    return source if _is_suite(source) else None


def check_output(output: Path) -> None:
    """Refuse (``ValueError``) a report path that cannot be written, before the suite runs:
    the suite writes its report (creating missing folders) only after every benchmark ran.
    ``python -m benchmarks`` makes the same check (``run_suite``)."""
    path = output.resolve()
    if path.is_dir():
        raise ValueError(f"--output: {output} is a folder; expected a file, e.g. {output / 'RESULTS.md'}")
    folder = path.parent
    while not folder.exists():  # the missing folders are created when the report is written
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"--output: {folder} is not a folder, so {output} cannot be written")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ValueError(f"--output: no permission to write {target}")


def _cmd_bench(args: argparse.Namespace) -> int:
    folder = find_benchmarks_dir(args.benchmarks_dir)
    if folder is None:
        where = (
            f" at {args.benchmarks_dir}"
            if args.benchmarks_dir
            else " here, in its parents or beside the package"
        )
        print(NOT_FOUND.format(where=where), file=sys.stderr)
        return 2
    if args.runs < 1:
        raise ValueError(f"--runs must be at least 1, got {args.runs}")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        # NaN failed in the suite's first run ('cannot convert float NaN to integer'), a
        # negative limit counted every run as failed after it ran.
        raise ValueError(f"--timeout must be a finite number of seconds > 0, got {args.timeout}")
    if args.output is not None and not args.list:
        check_output(args.output)
    command = [sys.executable, "-m", "benchmarks", "--runs", str(args.runs)]
    if args.quick:
        command.append("--quick")
    if args.list:
        command.append("--list")
    if args.only:
        command += ["--only", args.only]
    if args.timeout is not None:
        command += ["--timeout", str(args.timeout)]
    if args.output is not None:
        command += ["--output", str(args.output.resolve())]
    # The suite measures the package this interpreter imports, wherever it is installed.
    import anomaly_detection

    env = dict(os.environ)
    package_parent = str(Path(anomaly_detection.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    print(f"running the benchmark suite in {folder}", file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=folder.parent, env=env, check=False).returncode


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bench`` command to the ``anomaly-detection`` subparsers."""
    p = subparsers.add_parser(
        "bench",
        help="run the peer benchmark suite (source checkout) and write benchmarks/RESULTS.md",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--quick", action="store_true", help="reduced sizes (2.5-3.5 min in all on a busy 2-core box)"
    )
    p.add_argument(
        "--runs", type=int, default=3, help="runs of each benchmark; medians are reported (default 3)"
    )
    p.add_argument("--only", help="comma-separated benchmark names, e.g. detector,forest (default: all)")
    p.add_argument("--output", type=Path, help="report file (default benchmarks/RESULTS.md in the checkout)")
    p.add_argument("--timeout", type=float, help="seconds per run before it counts as failed")
    p.add_argument(
        "--list", action="store_true", help="list the benchmarks and whether their peers are installed"
    )
    p.add_argument("--benchmarks-dir", type=Path, help="the checkout's benchmarks/ folder (default: found)")
    p.set_defaults(func=_cmd_bench)
    return p

"""Packaging (issue 19, item 7): the extras and groups pyproject.toml declares match what the code
imports, the cibuildwheel configuration is there and points at a real smoke check, and the
sketch sources reach compiler intrinsics only through portable.hpp."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "anomaly_detection"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_the_client_extra_holds_what_the_client_imports():
    project = _pyproject()["project"]
    client = _names(project["optional-dependencies"]["client"])
    third_party = (
        _imports(PACKAGE / "client" / "client.py") - set(sys.stdlib_module_names) - {"anomaly_detection"}
    )
    base = _names(project["dependencies"])
    assert {m.replace("_", "-") for m in third_party} <= client | base
    assert {"httpx", "tenacity"} <= client
    # the api extra runs the demo's client and the idempotency store
    assert {"httpx", "tenacity", "cachetools"} <= _names(project["optional-dependencies"]["api"])


def test_typing_extensions_is_declared_where_it_is_imported():
    users = [p for p in PACKAGE.rglob("*.py") if "typing_extensions" in _imports(p)]
    assert users  # the client's Self
    assert "typing-extensions" in _names(_pyproject()["project"]["dependencies"])


def test_dev_tools_are_a_pep_735_group_not_an_extra():
    config = _pyproject()
    dev = _names(config["dependency-groups"]["dev"])
    assert {"ruff", "pybind11-stubgen", "cmake"} <= dev
    assert not dev & _names(config["project"]["optional-dependencies"]["test"])


def test_cibuildwheel_builds_manylinux_wheels_and_runs_the_smoke_check():
    config = _pyproject()["tool"]["cibuildwheel"]
    assert "cp310-*" in config["build"]
    assert config["linux"]["manylinux-x86_64-image"].startswith("manylinux")
    script = re.search(r"\{project\}/(\S+)", config["test-command"]).group(1)
    assert (ROOT / script).is_file()
    assert script in (ROOT / ".ci" / "run").read_text()  # CI runs the same check on its wheel


def test_sketch_sources_use_portable_intrinsics():
    for name in ("count_min.cpp", "hyperloglog.cpp", "distinct.cpp"):
        source = (ROOT / "cpp" / "src" / "sketches" / name).read_text()
        assert "__builtin_" not in source, name
        assert '#include "anomaly_detection/portable.hpp"' in source, name
        assert "portable::" in source, name

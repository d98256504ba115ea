"""The package's layers: what each import loads, one home per concern, the old import paths."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "anomaly_detection"


def _loaded_after(statement: str) -> set[str]:
    """The modules in sys.modules after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_sketches_loads_no_pydantic_stores_or_forests():
    loaded = _loaded_after("import anomaly_detection.sketches")
    assert "anomaly_detection.sketches" in loaded
    for heavy in ("pydantic", "pydantic_settings", "anomaly_detection.config", "anomaly_detection.stores",
                  "anomaly_detection.forest", "anomaly_detection.core"):  # fmt: skip
        assert heavy not in loaded, heavy


def test_the_root_names_still_resolve_on_first_use():
    loaded = _loaded_after(
        "import anomaly_detection as ad\n"
        "assert ad.StatisticalAnomalyDetector.__name__ == 'StatisticalAnomalyDetector'\n"
        "assert ad.Settings().redis_key_prefix == 'anomaly'\n"
        "from anomaly_detection import IsolationForest, StoreUnavailableError, __version__\n"
        "assert set(ad.__all__) <= set(dir(ad))"
    )
    assert "pydantic_settings" in loaded
    import anomaly_detection

    with pytest.raises(AttributeError, match="no_such_name"):
        anomaly_detection.no_such_name  # noqa: B018 - the attribute access is the test


def test_stores_and_the_redis_wing_import_nothing_above_them():
    loaded = _loaded_after(
        "import anomaly_detection.stores.redis, anomaly_detection.redis.alerts, anomaly_detection.redis.client"
    )
    assert "anomaly_detection.stores.redis" in loaded
    for above in ("anomaly_detection.core", "anomaly_detection.core.validation", "anomaly_detection.api",
                  "anomaly_detection.config", "anomaly_detection.utils", "pydantic", "redis"):  # fmt: skip
        assert above not in loaded, above


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_key_strings_are_built_only_in_keys_py():
    # Pieces of the layout that only a key builder would write (comments and docstrings aside).
    pieces = ("temp:data:", ":queue", ":stats", ":state", ":meta", ":merge", "sketch:", "alerts:",
              "stream:", "channel:")  # fmt: skip
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {value!r}"
        for path in PACKAGE.rglob("*.py")
        if path != PACKAGE / "redis" / "keys.py"
        for line, value in _string_constants(path)
        if any(p in value for p in pieces) and " " not in value
    ]
    assert offenders == []


def test_one_severity_rule():
    from anomaly_detection.redis.alerts import severity_of

    assert severity_of(5.9, 3.0) == "warning"
    assert severity_of(6.0, 3.0) == "critical"
    assert severity_of(-6.5, 3.0) == "critical"
    # Nowhere else is a severity decided (``"critical" if ... else "warning"``).
    rules = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.IfExp)
        and any(isinstance(b, ast.Constant) and b.value == "critical" for b in (node.body, node.orelse))
    ]
    assert [rule.split(":")[0] for rule in rules] == ["redis/alerts.py"]


def test_old_import_paths_are_the_same_objects():
    from anomaly_detection import alerts, redis
    from anomaly_detection.redis import client, keys, manager
    from anomaly_detection.utils import redis_cli, redis_namespaces

    assert redis_namespaces.AnomalyRedisKeys is keys.AnomalyRedisKeys is redis.AnomalyRedisKeys
    assert redis_namespaces.AnomalyRedisTTL is keys.AnomalyRedisTTL
    assert redis_namespaces.AnomalyRedisManager is manager.AnomalyRedisManager
    assert redis_namespaces.AsyncAnomalyRedisManager is manager.AsyncAnomalyRedisManager
    assert alerts.RedisAlertSink is redis.alerts.RedisAlertSink
    assert redis_cli.redis_client_from_settings is client.redis_client_from_settings

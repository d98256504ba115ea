"""The ``migrate-keys`` and ``health`` subcommands (wired into ``anomaly-detection`` by cli.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from anomaly_detection.redis.client import redis_client_from_settings

__all__ = ["add_redis_parsers", "redis_client_from_settings"]  # the factory is re-exported: its old home


def _manager(args: argparse.Namespace) -> Any:
    from anomaly_detection.config import get_settings
    from anomaly_detection.redis.manager import AnomalyRedisManager

    settings = get_settings()
    return AnomalyRedisManager(redis_client_from_settings(settings, args.url), settings)


def _cmd_migrate_keys(args: argparse.Namespace) -> int:
    manager = _manager(args)
    plan = manager.plan_legacy_migration(args.pattern)
    done = plan.mapping if args.dry_run else manager.migrate_legacy_keys(args.pattern)
    verb = "would rename" if args.dry_run else "renamed"
    for old, new in sorted(plan.mapping.items()):
        if old in done:
            print(f"{verb}  {old} -> {new}")
        else:
            print(f"kept     {old} ({new} already exists)")
    for old, reason in sorted(plan.skipped.items()):
        print(f"skipped  {old}: {reason}")
    print(f"{len(done)} key(s) {verb}, {len(plan.mapping) - len(done) + len(plan.skipped)} left as they were")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    health = _manager(args).get_system_health()
    if args.json:
        print(json.dumps(health, indent=2, sort_keys=True))
        return 0
    print(f"sensors ({len(health['sensors'])}):")
    for sensor, length in health["sensors"].items():
        print(f"  {sensor:<40} {length:>8} point(s) in window")
    print(f"components ({len(health['components'])}):")
    for component, info in health["components"].items():
        details = ", ".join(f"{k}={v}" for k, v in info.items() if k != "timestamp")
        print(f"  {component:<40} alive {details}".rstrip())
    if health["problems"]:
        print(f"problems ({len(health['problems'])}):")
        for key, problem in health["problems"].items():
            print(f"  {key}: {problem}")
    return 0


def add_redis_parsers(subparsers: Any) -> None:
    """Add ``migrate-keys`` and ``health`` to the subparsers of the main CLI."""
    url_help = "Redis URL (default: ANOMALY_REDIS_URL or ANOMALY_REDIS_HOST/ANOMALY_REDIS_PORT/...)"
    p = subparsers.add_parser("migrate-keys", help="rename legacy Redis keys into the anomaly: layout")
    p.add_argument(
        "--from",
        dest="pattern",
        default="anomaly_detector:*",
        metavar="PATTERN",
        help="SCAN pattern of the legacy keys, '<legacy prefix>:*'; only this package's declared "
        "legacy prefixes are accepted (default anomaly_detector:*)",
    )
    p.add_argument("--dry-run", action="store_true", help="only print what would be renamed")
    p.add_argument("--url", help=url_help)
    p.set_defaults(func=_cmd_migrate_keys)

    p = subparsers.add_parser("health", help="window length per sensor and component heartbeats in Redis")
    p.add_argument("--url", help=url_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_health)

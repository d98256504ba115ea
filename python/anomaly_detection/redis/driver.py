"""One vocabulary of Redis operations, run on a sync or an asyncio client.

Code that talks to Redis is written once, as a generator of *steps*: it validates,
builds keys and encodes, then yields the operations it needs (:class:`Command`,
:class:`Script`, :class:`Batch`, :class:`Scan`, :class:`Purge`, :class:`Sleep`) and
receives each reply (or, thrown into it, the exception the operation raised); it
returns its result. It does no I/O itself, so one body serves ``redis.Redis``,
``redis.cluster.RedisCluster`` and their ``redis.asyncio`` twins: :class:`Driver`
tells them apart once and runs the steps on the right runner. Bad input raises
ValueError before the first operation is yielded, so nothing is written.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Generator, Mapping
from typing import Any, NamedTuple, TypeVar

from anomaly_detection._fork import on_fork_in_child  # re-exported: the Redis objects' hook
from anomaly_detection.redis.codec import text

__all__ = [
    "Batch",
    "Command",
    "Driver",
    "Purge",
    "Scan",
    "Script",
    "Sleep",
    "Steps",
    "command",
    "decodes_responses",
    "down_errors",
    "is_async_client",
    "is_cluster_client",
    "on_fork_in_child",
    "redis_errors",
]

_SCAN_COUNT = 1000
_T = TypeVar("_T")


class Command(NamedTuple):
    """``client.<name>(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] | None = None


def command(name: str, *args: Any, **kwargs: Any) -> Command:
    """:class:`Command` ``name`` with its arguments."""
    return Command(name, args, kwargs)


class Script(NamedTuple):
    """A Lua script registered with ``client.register_script``, run on ``keys`` and ``args``
    (EVALSHA, loading the script when the server lacks it)."""

    script: Any
    keys: list[Any]
    args: list[Any]


class Batch(NamedTuple):
    """Operations sent in one pipeline (``Command`` or ``Script``); the reply is the list of
    their replies."""

    ops: tuple[Command | Script, ...]
    transaction: bool


class Scan(NamedTuple):
    """SCAN MATCH ``pattern`` (never KEYS); the reply is the list of keys as str."""

    pattern: str


class Purge(NamedTuple):
    """SCAN MATCH ``pattern`` and UNLINK the keys ``batch`` at a time; the reply is how many were deleted."""

    pattern: str
    batch: int


class Sleep(NamedTuple):
    """Pause ``seconds`` (``asyncio.sleep`` on an asyncio client); the reply is None."""

    seconds: float


Op = Command | Script | Batch | Scan | Purge | Sleep
Steps = Generator[Op, Any, _T]


def is_async_client(client: Any) -> bool:
    """Whether ``client`` is a ``redis.asyncio`` client (its calls return awaitables)."""
    return type(client).__module__.startswith("redis.asyncio") or inspect.iscoroutinefunction(
        getattr(client, "execute_command", None)
    )


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is a Redis Cluster client (sync or asyncio)."""
    return callable(getattr(client, "get_default_node", None))


def down_errors() -> tuple[type[BaseException], ...]:
    """What makes Redis unavailable for a call: a connection or timeout error, and on a
    Cluster a slot without a reachable master (during a failover: ``CLUSTERDOWN``, no node
    for the slot, the redirection budget spent) or a sensor whose keys are split by a slot
    migration for longer than redis-py retries ``TRYAGAIN``."""
    import redis.exceptions as e

    # No node of the Cluster answered (redis-py versions that have it).
    unreachable = getattr(e, "RedisClusterUnreachableError", e.SlotNotCoveredError)
    return (e.ConnectionError, e.TimeoutError, e.ClusterError, e.SlotNotCoveredError, unreachable,
            e.TryAgainError, OSError)  # fmt: skip


def redis_errors() -> tuple[type[BaseException], ...]:
    """redis-py's base error (any failed Redis call, a script's error included), or nothing
    when redis-py is not installed (the ``redis`` extra)."""
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return ()
    return (RedisError,)


def decodes_responses(client: Any) -> bool:
    """Whether ``client`` was made with ``decode_responses=True`` (its replies are str, so
    binary values such as checkpoints, shards and filter replies would not survive)."""
    return bool(getattr(client, "get_connection_kwargs", dict)().get("decode_responses"))


class Driver:
    """Runs steps on one client; which runner is decided once, here.

    :meth:`run` returns the steps' result for a sync client and a coroutine for an asyncio one.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.is_async = is_async_client(client)
        self.is_cluster = is_cluster_client(client)
        self.decodes = decodes_responses(client)

    def run(self, steps: Steps[_T]) -> Any:
        """The result of ``steps`` (a coroutine of it on an asyncio client)."""
        return self._arun(steps) if self.is_async else self._run(steps)

    def run_many(self, many: list[Steps[Any]]) -> Any:
        """Several independent steps in lockstep: each round sends the next operation of every
        unfinished one in one pipeline (one round trip; op by op on a Cluster, whose pipelines
        refuse EVALSHA). Returns, in order, each one's result or the exception it raised (a
        coroutine of that list on an asyncio client)."""
        return self._arun_many(many) if self.is_async else self._run_many(many)

    @staticmethod
    def _advance(steps: Steps[Any], reply: Any, failed: BaseException | None) -> tuple[bool, Any]:
        """(done, the next op or the outcome) of ``steps`` given its last reply or failure."""
        try:
            op = steps.throw(failed) if failed is not None else steps.send(reply)
        except StopIteration as stop:
            return True, stop.value
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, per steps
            return True, exc
        return False, op

    def _lockstep(self, many: list[Steps[Any]]) -> Generator[list[Op], list[tuple[Any, Any]], list[Any]]:
        """The rounds of :meth:`run_many`: yields the ops of a round, receives (reply, failure)
        pairs, returns the outcomes."""
        outcomes: list[Any] = [None] * len(many)
        pending: dict[int, Op] = {}
        for i, steps in enumerate(many):
            done, first = self._advance(steps, None, None)
            if done:
                outcomes[i] = first
            else:
                pending[i] = first
        while pending:
            replies = yield list(pending.values())
            following: dict[int, Op] = {}
            for (i, _), (reply, failed) in zip(pending.items(), replies):
                done, nxt = self._advance(many[i], reply, failed)
                if done:
                    outcomes[i] = nxt
                else:
                    following[i] = nxt
            pending = following
        return outcomes

    def _pipelinable(self, ops: list[Op]) -> bool:
        return not self.is_cluster and len(ops) > 1 and all(isinstance(op, (Command, Script)) for op in ops)

    def _run_many(self, many: list[Steps[Any]]) -> list[Any]:
        rounds = self._lockstep(many)
        try:
            ops = next(rounds)
            while True:
                if self._pipelinable(ops):
                    pipe = self.client.pipeline(transaction=False)
                    for op in ops:
                        _queue(pipe, op)
                    try:
                        got = pipe.execute(raise_on_error=False)
                        replies = []
                        for op, r in zip(ops, got):
                            if _no_script(
                                r
                            ):  # the server lost the script (restart, SCRIPT FLUSH): it did not run
                                try:
                                    r = self._execute(op)
                                except Exception as exc:  # noqa: BLE001 - thrown into its steps
                                    r = exc
                            replies.append((None, r) if isinstance(r, Exception) else (r, None))
                    except Exception as exc:  # noqa: BLE001 - every op of the round failed with it
                        replies = [(None, exc)] * len(ops)
                else:
                    replies = []
                    for op in ops:
                        try:
                            replies.append((self._execute(op), None))
                        except Exception as exc:  # noqa: BLE001, PERF203 - thrown into its steps
                            replies.append((None, exc))
                ops = rounds.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _arun_many(self, many: list[Steps[Any]]) -> list[Any]:
        rounds = self._lockstep(many)
        try:
            ops = next(rounds)
            while True:
                if self._pipelinable(ops):
                    pipe = self.client.pipeline(transaction=False)
                    for op in ops:
                        _queue(pipe, op)
                    try:
                        got = await pipe.execute(raise_on_error=False)
                        replies = []
                        for op, r in zip(ops, got):
                            if _no_script(
                                r
                            ):  # the server lost the script (restart, SCRIPT FLUSH): it did not run
                                try:
                                    r = await self._aexecute(op)
                                except Exception as exc:  # noqa: BLE001 - thrown into its steps
                                    r = exc
                            replies.append((None, r) if isinstance(r, Exception) else (r, None))
                    except Exception as exc:  # noqa: BLE001 - every op of the round failed with it
                        replies = [(None, exc)] * len(ops)
                else:  # a Cluster: the ops go to their nodes concurrently
                    got = await asyncio.gather(*(self._aexecute(op) for op in ops), return_exceptions=True)
                    replies = [(None, r) if isinstance(r, BaseException) else (r, None) for r in got]
                ops = rounds.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _unpipelined(self, batch: Batch) -> bool:
        # A Redis Cluster pipeline refuses EVALSHA: there, a batch with a script is sent op by op.
        return self.is_cluster and any(isinstance(op, Script) for op in batch.ops)

    @staticmethod
    def _issue(target: Any, op: Command | Script) -> Any:
        """Send (or queue on a pipeline) one op; the reply, or an awaitable on an asyncio client."""
        if isinstance(op, Script):
            return op.script(keys=op.keys, args=op.args, client=target)
        return getattr(target, op.name)(*op.args, **(op.kwargs or {}))

    # --- sync ---------------------------------------------------------------------

    def _run(self, steps: Steps[_T]) -> _T:
        try:
            op = next(steps)
            while True:
                try:
                    reply = self._execute(op)
                except BaseException as exc:  # noqa: BLE001, PERF203 - the steps re-raise what they do not handle
                    op = steps.throw(exc)
                else:
                    op = steps.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _execute(self, op: Op) -> Any:
        client = self.client
        if isinstance(op, Sleep):
            return time.sleep(op.seconds)
        if isinstance(op, Scan):
            return _key_names([k for k in client.scan_iter(match=op.pattern, count=_SCAN_COUNT)])
        if isinstance(op, Purge):
            deleted, chunk = 0, []
            for key in client.scan_iter(match=op.pattern, count=_SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= op.batch:
                    deleted, chunk = deleted + int(client.unlink(*chunk)), []
            return deleted + (int(client.unlink(*chunk)) if chunk else 0)
        if isinstance(op, Batch) and self._unpipelined(op):
            return [self._issue(client, o) for o in op.ops]
        if isinstance(op, Batch):
            pipe = client.pipeline(transaction=op.transaction)
            for o in op.ops:
                self._issue(pipe, o)
            return pipe.execute()
        return self._issue(client, op)

    # --- asyncio ------------------------------------------------------------------

    async def _arun(self, steps: Steps[_T]) -> _T:
        try:
            op = next(steps)
            while True:
                try:
                    reply = await self._aexecute(op)
                except BaseException as exc:  # noqa: BLE001, PERF203 - the steps re-raise what they do not handle
                    op = steps.throw(exc)
                else:
                    op = steps.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _aexecute(self, op: Op) -> Any:
        client = self.client
        if isinstance(op, Sleep):
            return await asyncio.sleep(op.seconds)
        if isinstance(op, Scan):
            return _key_names([k async for k in client.scan_iter(match=op.pattern, count=_SCAN_COUNT)])
        if isinstance(op, Purge):
            deleted, chunk = 0, []
            async for key in client.scan_iter(match=op.pattern, count=_SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= op.batch:
                    deleted, chunk = deleted + int(await client.unlink(*chunk)), []
            return deleted + (int(await client.unlink(*chunk)) if chunk else 0)
        if isinstance(op, Batch) and self._unpipelined(op):
            return [
                await (self._ascript(o) if isinstance(o, Script) else self._issue(client, o)) for o in op.ops
            ]
        if isinstance(op, Batch):
            pipe = client.pipeline(transaction=op.transaction)
            for o in op.ops:
                queued = self._issue(pipe, o)
                if inspect.iscoroutine(queued):  # a Lua script queues its EVALSHA inside a coroutine
                    await queued
            return await pipe.execute()
        if isinstance(op, Script):
            return await self._ascript(op)
        return await self._issue(client, op)

    async def _ascript(self, op: Script) -> Any:
        """EVALSHA of ``op`` on this asyncio client, loading the script when the server lacks it
        (a restart, ``SCRIPT FLUSH``). The script may have been registered on a sync client (a
        store whose asyncio twin sends its appends): only its text and digest are used."""
        from redis.exceptions import NoScriptError

        script = op.script
        try:
            return await self.client.evalsha(script.sha, len(op.keys), *op.keys, *op.args)
        except NoScriptError:
            await self.client.script_load(script.script)
            return await self.client.evalsha(script.sha, len(op.keys), *op.keys, *op.args)


def _queue(pipe: Any, op: Command | Script) -> None:
    """Queue ``op`` on a pipeline; a script as a bare EVALSHA (redis-py's own script queueing
    costs a SCRIPT EXISTS round trip per pipeline; a lost script is sent again by the caller),
    queued as redis-py's ``evalsha`` queues it (``execute_command("EVALSHA", ...)``)."""
    if isinstance(op, Script):
        pipe.execute_command("EVALSHA", op.script.sha, len(op.keys), *op.keys, *op.args)
    else:
        getattr(pipe, op.name)(*op.args, **(op.kwargs or {}))


_NO_SCRIPT: tuple[type, ...] = ()


def _key_names(keys: list[Any]) -> list[str]:
    """SCAN's keys as str; a name that is not UTF-8 (no key this package writes: its names are
    UTF-8 text, but another client may write anything under the prefix) is skipped with a
    warning, where decoding it failed the whole call (``health`` on such a key)."""
    names = []
    for key in keys:
        try:
            names.append(text(key))
        except UnicodeDecodeError:  # noqa: PERF203 - rare: a foreign key
            logging.getLogger(__name__).warning("skipped a key whose name is not UTF-8: %r", key)
    return names


def _no_script(reply: Any) -> bool:
    global _NO_SCRIPT
    if not _NO_SCRIPT:  # imported on first use (redis is optional), then kept
        from redis.exceptions import NoScriptError

        _NO_SCRIPT = (NoScriptError,)
    return isinstance(reply, _NO_SCRIPT)

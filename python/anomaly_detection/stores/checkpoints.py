"""The ensemble's checkpoints on Redis, and each process's cache of its last states.

The ensemble needs far more history than a window (a 300-point warm-up, 2,000
points of score history, a daily lag): beside the window, ``...:state`` keeps a
*checkpoint* of its state (versioned, checksummed bytes) at a known point count.
Since the ensemble's update is deterministic, restoring a checkpoint and
replaying the window's points after it gives exactly the state of one process
that saw every point. Each process caches its last state per sensor, so the
append script returns the checkpoint only when the stored one is newer than the
cached one; a process writes a checkpoint (compare-and-set: only if newer) only
when the window would otherwise stop covering the points after the stored one,
every ``window_size // 2`` points, so most calls stay one round trip.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

from anomaly_detection import _core
from anomaly_detection.redis import scripts
from anomaly_detection.redis.codec import decode_window, text
from anomaly_detection.redis.driver import Script, Sleep, Steps, command
from anomaly_detection.redis.keys import AnomalyRedisKeys

__all__ = ["Cached", "Checkpointed", "EnsembleCheckpoints"]

# The store's logger: these warnings are part of what its users watch.
_log = logging.getLogger("anomaly_detection.stores.redis")

# Pauses (s) while waiting for a checkpoint another process is saving: about 2 s in all.
# A busy machine was seen to keep that process from it for more than the 0.5 s this
# used to allow (the ensemble's state grew with its detectors). Only paid in full when
# that process died between its append and its save.
_CHECKPOINT_WAITS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024)


class Cached(NamedTuple):
    """A process's last ensemble state of a sensor and the window after it."""

    epoch: str
    #: The stream position the state is at: the sensor's point count after it. A
    #: state rebuilt from a window learned fewer points (state.seen <= position).
    position: int
    state: Any  # _core.EnsembleState
    values: np.ndarray
    timestamps: np.ndarray


class Checkpointed(NamedTuple):
    """What an ensemble call learned: to keep in the cache, and whether to save."""

    cached: Cached
    save: bool
    force: bool


class EnsembleCheckpoints:
    """The checkpoints of one store: its state cache (LRU), reading, waiting for and saving them.

    Parameters
    ----------
    client : redis client
        Where the scripts are registered.
    keys : AnomalyRedisKeys
    settings : Settings
        ``window_size`` and ``temp_data_ttl``.
    config : _core.DetectorConfig
        The threshold and the alert cooldown (in points or seconds) of the checkpoints.
    cache_size : int
        Sensors whose ensemble state this process keeps (about 100 KB each).
    down : tuple of exception types
        The errors that mean Redis is unavailable.
    """

    def __init__(
        self,
        client: Any,
        keys: AnomalyRedisKeys,
        settings: Any,
        config: Any,
        cache_size: int,
        down: tuple[type[BaseException], ...],
    ) -> None:
        self.keys = keys
        self.settings = settings
        self.config = config
        self.cache_size = cache_size
        self._down = down
        self._save_script = client.register_script(scripts.SAVE_CHECKPOINT)
        self._find_script = client.register_script(scripts.FIND_CHECKPOINT)
        # Per-process ensemble states (LRU): a call only needs the checkpoint's bytes
        # when another process got further; a miss costs one transfer, never a result.
        self._states: OrderedDict[str, Cached] = OrderedDict()
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """In a forked child: a lock of its own (the cached states stay: each is checked
        against the checkpoint's position before use)."""
        self._lock = threading.Lock()

    # --- the per-process cache ---------------------------------------------------------

    def take(self, sensor: str) -> Cached | None:
        """The cached state of ``sensor``, taken out while in use: the core advances it in
        place, and another thread on the same sensor must not share it (it fetches the
        checkpoint instead)."""
        with self._lock:
            return self._states.pop(sensor, None)

    def peek(self, sensor: str) -> Cached | None:
        """The cached state of ``sensor``, left in the cache (to be read, never advanced)."""
        with self._lock:
            return self._states.get(sensor)

    def keep(self, sensor: str, cached: Cached | None) -> None:
        """Put a state (back) in the cache, unless a newer one of the same epoch is there."""
        if cached is None:
            return
        with self._lock:
            current = self._states.get(sensor)
            if current is not None and current.epoch == cached.epoch and current.position >= cached.position:
                return
            self._states[sensor] = cached
            self._states.move_to_end(sensor)
            while len(self._states) > self.cache_size:
                self._states.popitem(last=False)

    # --- reading -----------------------------------------------------------------------

    def _restored(self, sensor: str, blob: bytes, ckpt_seen: int) -> Any:
        """The stored checkpoint, or None (with a warning) when its bytes are corrupt."""
        try:
            state = _core.EnsembleState.from_bytes(
                blob, self.config.threshold, self.config.alert_cooldown, self.config.alert_cooldown_seconds
            )
            if state.seen > ckpt_seen:
                raise ValueError(f"possible corruption: learned {state.seen} points, stored at {ckpt_seen}")
        except ValueError as exc:
            _log.warning(
                "ensemble checkpoint of %s is unreadable (%s): rebuilding from the window", sensor, exc
            )
            return None
        return state

    def restored(self, sensor: str, blob: bytes, ckpt_seen: int) -> Any:
        """:meth:`_restored` for a reader (the store's ``progress``)."""
        return self._restored(sensor, blob, ckpt_seen)

    def _awaited(self, sensor: str, epoch: str, seen: int, count: int) -> Steps[tuple[Any, int] | None]:
        """Steps: poll briefly for a checkpoint in [seen - count, seen]; (state, position) or None.

        When the window does not reach back to any checkpoint, the process whose append
        ended where ours began is saving one at exactly ``seen`` (its gap was larger than
        half a window too); it lands within milliseconds, as the checkpoint or, when a
        newer one overtook it, parked beside it. Waiting keeps concurrent batches exact;
        if that process died, the ensemble is rebuilt after the last pause."""
        keys = [self.keys.checkpoint(sensor), self.keys.parked_checkpoint(sensor)]
        for delay in _CHECKPOINT_WAITS:
            try:
                yield Sleep(delay)
                found = yield Script(self._find_script, keys, [epoch, seen - count, seen])
            except self._down:  # our points are stored: never fail the call now
                return None
            if int(found[0]) >= 0:
                restored = self._restored(sensor, found[1], int(found[0]))
                return None if restored is None else (restored, int(found[0]))
        return None

    # --- scoring and saving ------------------------------------------------------------

    def append_args(self, cached: Cached | None) -> list[Any]:
        """The epoch and position of the cached state, as the ensemble's append script takes them."""
        return [cached.epoch, cached.position] if cached is not None else ["", -1]

    def score(
        self, sensor: str, reply: Any, values: np.ndarray, timestamps: np.ndarray, cached: Cached | None
    ) -> Steps[tuple[tuple, Checkpointed]]:
        """Steps: score the points after the append's ``reply``; returns (the scores, what to
        cache and save)."""
        seen, entries, epoch, ckpt_seen, blob = reply[:5]
        seen, ckpt_seen = int(seen), int(ckpt_seen)
        epoch = text(epoch)
        state, position = None, 0
        if cached is not None and cached.epoch == epoch and cached.position <= seen:
            state, position = cached.state, cached.position
        corrupt = False
        if blob is not None:
            # A checkpoint beyond the counter cannot come from this epoch's appends: corrupt,
            # and replaced (else no save could ever pass the compare-and-set again).
            if ckpt_seen > seen:
                _log.warning(
                    "ensemble checkpoint of %s claims %d points, its counter %d: rebuilding from the window",
                    sensor, ckpt_seen, seen,
                )  # fmt: skip
                restored = None
            else:
                restored = self._restored(sensor, blob, ckpt_seen)
            corrupt = restored is None
            if restored is not None and ckpt_seen <= seen and (state is None or ckpt_seen > position):
                state, position = restored, ckpt_seen
        window_values, window_stamps = decode_window(entries, reply[6:8] if len(reply) > 6 else None, seen)
        count = min(len(window_values), self.settings.window_size)
        if seen > count and (state is None or seen - position > count):
            found = yield from self._awaited(sensor, epoch, seen, count)
            if found is not None:
                state, position = found
        try:
            *result, state, exact = _core.detect_after_checkpoint(
                self.config, window_values, window_stamps, seen, values, timestamps, state, position
            )
        except ValueError:
            if len(reply) <= 6:
                raise
            # A corrupt compact mirror (bytes of the right length that are not the window's
            # numbers): read as far as it can be and dropped, the next append rebuilds it.
            finite = np.isfinite(window_values) & np.isfinite(window_stamps)
            _log.warning(
                "the compact mirror of %s held %d unreadable numbers: dropped, rebuilt from the window list",
                sensor, int(len(finite) - finite.sum()),
            )  # fmt: skip
            window_values, window_stamps = window_values[finite], window_stamps[finite]
            yield command("hdel", self.keys.counters(sensor), "ring", "tail")
            *result, state, exact = _core.detect_after_checkpoint(
                self.config, window_values, window_stamps, seen, values, timestamps, state, position
            )
        if not exact:
            _log.warning(
                "ensemble of %s rebuilt from the window: no checkpoint within its last %d points",
                sensor, len(window_values),
            )  # fmt: skip
        w = self.settings.window_size
        after = seen + len(values)
        if len(values) >= w:
            kept = (values[-w:].copy(), timestamps[-w:].copy())
        else:
            keep = w - len(values)
            kept = (
                np.concatenate((window_values[-keep:], values)),
                np.concatenate((window_stamps[-keep:], timestamps)),
            )
        # Saved when the window would soon stop covering the points after the stored
        # checkpoint (half a window of margin for other processes' appends in flight).
        stored = max(ckpt_seen, 0) if not corrupt else -1
        save = corrupt or after - stored > w // 2
        return tuple(result), Checkpointed(Cached(epoch, after, state, *kept), save, corrupt)

    def save(self, sensor: str, done: Checkpointed) -> Steps[None]:
        """Steps: save the state of ``done`` when it asks for it (compare-and-set); a failure
        only warns, since the points themselves are stored and the next call saves it."""
        if not done.save:
            return
        c = done.cached
        keys = [
            self.keys.checkpoint(sensor),
            self.keys.counters(sensor),
            self.keys.parked_checkpoint(sensor),
        ]
        args = [
            c.epoch,
            c.position,
            c.state.to_bytes(),
            self.settings.temp_data_ttl,
            "1" if done.force else "0",
        ]
        try:
            yield Script(self._save_script, keys, args)
        except self._down as exc:
            _log.warning("could not save the ensemble checkpoint of %s: %s", sensor, exc)

"""One fork hook for the process (pre-forking servers' workers, ``multiprocessing``'s ``fork``).

Two kinds of objects take part, each held weakly (an object dropped before a fork costs
nothing; a hook per object would stay registered for good: ~330 bytes and ~1 us of every later
fork per object ever made):

- :func:`on_fork_in_child`: a client-side object with per-process state (locks another thread
  may hold at the fork, a background thread the child does not run, work the parent will
  finish) has its ``_after_fork_in_child()`` called in the child, to start clean.
- :func:`hold_across_fork`: a native registry or sketch (a ``_core`` object) whose C++ locks
  other threads take without the GIL. Before the fork the forking thread holds all of them
  (``_core._lock_for_fork``: it waits, without the GIL, for the calls in progress to end, a
  registry's at its fork gate, a sketch's on its lock; new calls wait), and lets them go in the
  parent and in the child after it (pthread_atfork's protocol), so the child never inherits a
  lock held by a thread it does not have, nor a half-done call.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, TypeVar

from anomaly_detection import _core

__all__ = ["hold_across_fork", "on_fork_in_child"]

_T = TypeVar("_T")

_children: weakref.WeakSet[Any] = weakref.WeakSet()
_natives: weakref.WeakSet[Any] = weakref.WeakSet()
_locked: list[Any] = []  # the natives locked for the fork under way (kept alive until after it)
_one_fork = threading.Lock()  # two threads forking at once take the natives' locks in turn


def on_fork_in_child(obj: Any) -> None:
    """Have a child forked from now on call ``obj._after_fork_in_child()`` (unless ``obj``
    is gone by then)."""
    _children.add(obj)


def hold_across_fork(native: _T) -> _T:
    """Hold the C++ locks of ``native`` (a ``_core.SensorRegistry`` or sketch) across every
    fork from now on (while it lives): a child starts with them free and whole calls only.
    Returns ``native``."""
    _natives.add(native)
    return native


def _before_fork() -> None:
    _one_fork.acquire()
    if _natives:
        _locked[:] = _core._lock_for_fork(list(_natives))


def _after_fork_in_parent() -> None:
    try:
        if _locked:
            _core._unlock_after_fork(_locked, False)
            _locked.clear()
    finally:
        _one_fork.release()


def _after_fork_in_child() -> None:
    if _locked:
        _core._unlock_after_fork(_locked, True)
        _locked.clear()
    _one_fork.release()  # a plain lock: the child's thread releases what the forking one took
    for target in list(_children):
        target._after_fork_in_child()


# Once, at import. (Other modules' "before" hooks registered later run first, their "after"
# hooks after these.)
os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)

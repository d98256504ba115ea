"""What every sketch shares: parameter checks, bytes, pickling, equality."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from anomaly_detection._fork import hold_across_fork

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Items", "check_float", "check_int"]

#: One item (``str``, ``bytes`` or ``int``) or a batch: a sequence or 1-D NumPy array of them.
Items = str | bytes | int | Sequence[str | bytes | int] | np.ndarray


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` as an int in ``[low, high]`` or raise ValueError saying what came."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        # Bad input is a ValueError throughout the package (DESIGN.md), types included.
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")  # noqa: TRY004
    if not low <= int(value) <= high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, *, open_low: bool = True) -> float:
    """Return ``value`` as a finite float in ``(low, high]`` (or ``[low, high]``) or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    value = float(value)
    if (value <= low if open_low else value < low) or value > high:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name}: expected a number in {bracket}{low}, {high}], got {value}")
    return value


class Sketch:
    """Base of the sketches: a private native object and the bytes that restore it."""

    _native_type: ClassVar[type]
    __slots__ = ("_native",)

    def to_bytes(self) -> bytes:
        """Serialise to versioned, checksummed little-endian bytes."""
        return self._native.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Restore a sketch from :meth:`to_bytes`; raise ValueError on corrupt or foreign bytes."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"data: expected bytes, got {type(data).__name__}")  # noqa: TRY004
        obj = cls.__new__(cls)
        obj._native = hold_across_fork(cls._native_type.from_bytes(bytes(data)))
        return obj

    @classmethod
    def _wrap(cls, native: Any) -> Self:
        obj = cls.__new__(cls)
        obj._native = hold_across_fork(native)
        return obj

    def copy(self) -> Self:
        """An independent copy."""
        return type(self).from_bytes(self.to_bytes())

    def info(self) -> dict[str, Any]:
        """Parameters and size of the sketch."""
        raise NotImplementedError

    def _check_same_type(self, others: Sequence[Any]) -> list[Any]:
        if isinstance(others, Sketch):
            others = [others]
        natives = []
        for other in others:
            if type(other) is not type(self):
                raise ValueError(
                    f"merge: expected {type(self).__name__} sketches, got {type(other).__name__}"
                )
            natives.append(other._native)
        return natives

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_bytes, (self.to_bytes(),))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.info().items())
        return f"{type(self).__name__}({fields})"

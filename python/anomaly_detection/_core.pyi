"""
Native core of anomaly_detection (private: use the anomaly_detection package).
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['DetectorConfig', 'SensorLimitError', 'SensorRegistry', 'check_sensor_name', 'default_threshold', 'is_valid_sensor_name', 'normal_score']
class DetectorConfig:
    """
    Settings shared by every sensor of a registry.
    """
    include_anomalies: bool
    method: str
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        """
        Raise ValueError naming the first invalid field.
        """
    @property
    def cusum_k(self) -> float:
        ...
    @cusum_k.setter
    def cusum_k(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def ewma_alpha(self) -> float:
        ...
    @ewma_alpha.setter
    def ewma_alpha(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def max_sensors(self) -> int:
        ...
    @max_sensors.setter
    def max_sensors(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def min_samples(self) -> int:
        ...
    @min_samples.setter
    def min_samples(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def threshold(self) -> float:
        ...
    @threshold.setter
    def threshold(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def window_size(self) -> int:
        ...
    @window_size.setter
    def window_size(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class SensorLimitError(RuntimeError):
    pass
class SensorRegistry:
    """
    Thread-safe per-sensor windows and scoring (the embedded store).
    """
    @staticmethod
    def from_bytes(data: bytes) -> SensorRegistry:
        """
        Restore a snapshot; raises ValueError on corrupt bytes.
        """
    def __init__(self, config: DetectorConfig) -> None:
        ...
    def __len__(self) -> int:
        ...
    def clear(self) -> None:
        """
        Forget every sensor.
        """
    def detect(self, sensor: str, value: typing.SupportsFloat | typing.SupportsIndex, timestamp: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
        """
        Score one point; returns (value, timestamp, is_anomaly, score, deviation, expected, window_count).
        """
    def detect_batch(self, sensor: str, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
        """
        Score points in order (releases the GIL); returns (is_anomaly, scores, deviations, expected, window_counts).
        """
    def reset(self, sensor: str) -> bool:
        """
        Forget a sensor; returns whether it existed.
        """
    def sensors(self) -> list[str]:
        """
        Names of the known sensors.
        """
    def summary(self, sensor: str) -> typing.Any:
        """
        Counters and window statistics of a sensor, or None for an unknown sensor.
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed snapshot of the config and every sensor.
        """
    def window(self, sensor: str) -> typing.Any:
        """
        (values, timestamps) of the window, oldest first, or None for an unknown sensor.
        """
    @property
    def config(self) -> DetectorConfig:
        ...
def check_sensor_name(name: str) -> None:
    """
    Raise ValueError explaining why the name is not a valid sensor name.
    """
def default_threshold(method: str) -> float:
    """
    The conventional threshold of a method.
    """
def is_valid_sensor_name(name: str) -> bool:
    """
    True when the name is usable as a sensor name (and a part of a Redis key).
    """
def normal_score(z: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """
    erf(|z| / sqrt 2): one minus the two-sided tail probability.
    """

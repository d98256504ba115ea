"""
Native core of anomaly_detection (private: use the anomaly_detection package).
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['DetectorConfig', 'HalfSpaceTrees', 'IsolationForest', 'SensorLimitError', 'SensorRegistry', 'check_sensor_name', 'default_threshold', 'detect_after_window', 'is_valid_sensor_name', 'normal_score']
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
class HalfSpaceTrees:
    """
    Half-Space Trees with River's semantics (private core of anomaly_detection.forest.HalfSpaceTrees). NaN marks a missing feature.
    """
    @staticmethod
    def from_bytes(data: bytes) -> HalfSpaceTrees:
        """
        Restore from to_bytes; raises ValueError on corrupt bytes.
        """
    def __init__(self, n_trees: typing.SupportsInt | typing.SupportsIndex, height: typing.SupportsInt | typing.SupportsIndex, window_size: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, limits: collections.abc.Sequence[tuple[typing.SupportsFloat | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex]], feature_names: collections.abc.Sequence[str] = []) -> None:
        """
        Build the trees over limits[j] = (low, high) of each feature.
        """
    def learn_many(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        """
        Learn the rows in order (releases the GIL).
        """
    def learn_one(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        """
        Learn one row of n_features values.
        """
    def score_learn_many(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
        """
        For each row in order: score it, then learn it (releases the GIL).
        """
    def score_many(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
        """
        Score the rows without learning (releases the GIL).
        """
    def score_one(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> float:
        """
        Anomaly score of one row, in [0, 1].
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes of the parameters and masses.
        """
    @property
    def config(self) -> tuple[int, int, int, int]:
        """
        (n_trees, height, window_size, seed).
        """
    @property
    def feature_names(self) -> list[str]:
        """
        Names of the features, or [].
        """
    @property
    def limits(self) -> list[tuple[float, float]]:
        """
        (low, high) of each feature.
        """
    @property
    def n_features(self) -> int:
        """
        Number of features.
        """
class IsolationForest:
    """
    Isolation Forest with scikit-learn's semantics (private core of anomaly_detection.forest.IsolationForest).
    """
    @staticmethod
    def from_bytes(data: bytes) -> IsolationForest:
        """
        Restore from to_bytes; raises ValueError on corrupt bytes.
        """
    def __init__(self, n_estimators: typing.SupportsInt | typing.SupportsIndex = 100, max_samples: typing.SupportsInt | typing.SupportsIndex = 0, max_features: typing.SupportsInt | typing.SupportsIndex = 0, contamination: typing.SupportsFloat | typing.SupportsIndex = 0.0, bootstrap: bool = False, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Counts are resolved: max_samples 0 is 'auto', max_features 0 is all, contamination 0 is 'auto'.
        """
    def decision_function(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        score_samples - offset: negative for outliers.
        """
    def fit(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
        """
        Grow the trees on X (releases the GIL); n_threads 0 means one per core.
        """
    def mean_path_length(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        Mean path length E[h(x)] of each row over the trees.
        """
    def score_samples(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        Negated anomaly score of each row (lower is more abnormal).
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes of the config and the trees.
        """
    @property
    def config(self) -> tuple[int, int, int, float, bool, int]:
        """
        (n_estimators, max_samples, max_features, contamination, bootstrap, seed) as resolved counts.
        """
    @property
    def is_fitted(self) -> bool:
        """
        Whether fit has run.
        """
    @property
    def max_samples_used(self) -> int:
        """
        Rows per tree of the fit.
        """
    @property
    def n_features_in(self) -> int:
        """
        Columns seen by fit.
        """
    @property
    def n_nodes(self) -> int:
        """
        Nodes of every tree together.
        """
    @property
    def n_trees(self) -> int:
        """
        Number of fitted trees.
        """
    @property
    def offset(self) -> float:
        """
        offset_ (RuntimeError before fit).
        """
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
def detect_after_window(config: DetectorConfig, window_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], window_timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], seen: typing.SupportsInt | typing.SupportsIndex, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Score points that follow a window given as arrays (the shared-store path); returns (is_anomaly, scores, deviations, expected, window_counts).
    """
def is_valid_sensor_name(name: str) -> bool:
    """
    True when the name is usable as a sensor name (and a part of a Redis key).
    """
def normal_score(z: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """
    erf(|z| / sqrt 2): one minus the two-sided tail probability.
    """

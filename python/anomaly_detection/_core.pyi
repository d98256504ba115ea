"""
Native core of anomaly_detection (private: use the anomaly_detection package).
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['BloomFilter', 'CountMinSketch', 'CuckooFilter', 'DetectorConfig', 'EnsembleState', 'FilterFullError', 'HalfSpaceTrees', 'HyperLogLog', 'IsolationForest', 'SensorLimitError', 'SensorRegistry', 'TDigest', 'TopK', 'check_sensor_name', 'detect_after_checkpoint', 'detect_after_window', 'detect_point_after_window', 'group_points', 'is_valid_sensor_name', 'json_point_entries', 'normal_score', 'release_memory']
class BloomFilter:
    """
    Scalable Bloom filter.
    """
    @staticmethod
    def from_bytes(data: bytes) -> BloomFilter:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    def __init__(self, capacity: typing.SupportsInt | typing.SupportsIndex, error_rate: typing.SupportsFloat | typing.SupportsIndex, expansion: typing.SupportsInt | typing.SupportsIndex = 2, non_scaling: bool = False) -> None:
        """
        A filter for capacity items at error_rate.
        """
    def add(self, items: typing.Any) -> typing.Any:
        """
        Add items; True for each item that was not present.
        """
    def exists(self, items: typing.Any) -> typing.Any:
        """
        True where the item may be present, False where it surely is not.
        """
    def positions(self, items: typing.Any) -> numpy.typing.NDArray[numpy.uint64]:
        """
        Bit offsets of each item in the first layer, shape (n, hash_count).
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    @property
    def bit_count(self) -> int:
        ...
    @property
    def capacity(self) -> int:
        ...
    @property
    def error_rate(self) -> float:
        ...
    @property
    def expansion(self) -> int:
        ...
    @property
    def hash_count(self) -> int:
        ...
    @property
    def layer_count(self) -> int:
        ...
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def non_scaling(self) -> bool:
        ...
    @property
    def size(self) -> int:
        ...
class CountMinSketch:
    """
    Count-min sketch with saturating 32-bit counters.
    """
    @staticmethod
    def from_bytes(data: bytes) -> CountMinSketch:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    @staticmethod
    def from_error(epsilon: typing.SupportsFloat | typing.SupportsIndex, delta: typing.SupportsFloat | typing.SupportsIndex, conservative: bool = False, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> CountMinSketch:
        """
        A sketch whose error is at most epsilon * total with probability 1 - delta.
        """
    @classmethod
    def _install_fast_method(cls: typing.Any, name: str) -> None:
        """
        Make cls.<name> (a Python method that calls this class's method of that name on self._native) call it with no Python frame.
        """
    def __init__(self, width: typing.SupportsInt | typing.SupportsIndex, depth: typing.SupportsInt | typing.SupportsIndex, conservative: bool = False, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        A sketch of depth rows of width counters.
        """
    def _incrby(self, items: typing.Any, increments: typing.Any = 1) -> typing.Any:
        """
        incrby() for any items (the general path).
        """
    def clear(self) -> None:
        """
        Reset every counter.
        """
    def counters(self) -> numpy.typing.NDArray[numpy.uint32]:
        """
        A copy of the counters, row after row.
        """
    def incrby(self, items, increments = 1):
        """
        Add increments (one int or one per item); returns the new estimates. All or nothing.
        """
    def load_counters(self, counters: typing.Annotated[numpy.typing.ArrayLike, numpy.uint32]) -> None:
        """
        Replace every counter (row after row); total becomes the largest row sum.
        """
    def merge(self, others: collections.abc.Sequence[CountMinSketch], weights: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        """
        this += sum(weights[i] * others[i]), saturating.
        """
    def positions(self, items: typing.Any) -> numpy.typing.NDArray[numpy.uint64]:
        """
        Counter indices (row * width + column), shape (n, depth).
        """
    def query(self, items: typing.Any) -> typing.Any:
        """
        Estimated counts (never below the true counts).
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    @property
    def conservative(self) -> bool:
        ...
    @property
    def depth(self) -> int:
        ...
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def seed(self) -> int:
        ...
    @property
    def total(self) -> int:
        ...
    @property
    def width(self) -> int:
        ...
class CuckooFilter:
    """
    Cuckoo filter with deletions.
    """
    @staticmethod
    def from_bytes(data: bytes) -> CuckooFilter:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    def __init__(self, capacity: typing.SupportsInt | typing.SupportsIndex, bucket_size: typing.SupportsInt | typing.SupportsIndex = 2, max_iterations: typing.SupportsInt | typing.SupportsIndex = 20, expansion: typing.SupportsInt | typing.SupportsIndex = 1, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        A filter for about capacity items.
        """
    def add(self, items: typing.Any) -> None:
        """
        Add items (duplicates allowed); FilterFullError when one cannot fit.
        """
    def add_nx(self, items: typing.Any) -> typing.Any:
        """
        Add items not yet present; True for each item added.
        """
    def count(self, items: typing.Any) -> typing.Any:
        """
        Copies of each item's fingerprint (may overcount).
        """
    def delete(self, items: typing.Any) -> typing.Any:
        """
        Remove one copy of each item; True where a copy was found.
        """
    def exists(self, items: typing.Any) -> typing.Any:
        """
        True where the item may be present.
        """
    def slots(self, items: typing.Any) -> tuple[numpy.typing.NDArray[numpy.uint8], numpy.typing.NDArray[numpy.uint64], numpy.typing.NDArray[numpy.uint64]]:
        """
        (fingerprints, first buckets, second buckets) in the first sub-filter.
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    @property
    def bucket_count(self) -> int:
        ...
    @property
    def bucket_size(self) -> int:
        ...
    @property
    def capacity(self) -> int:
        ...
    @property
    def deletions(self) -> int:
        ...
    @property
    def expansion(self) -> int:
        ...
    @property
    def filter_count(self) -> int:
        ...
    @property
    def first_filter_buckets(self) -> int:
        ...
    @property
    def max_iterations(self) -> int:
        ...
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def size(self) -> int:
        ...
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
    def alert_cooldown(self) -> int:
        ...
    @alert_cooldown.setter
    def alert_cooldown(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def alert_cooldown_seconds(self) -> float:
        ...
    @alert_cooldown_seconds.setter
    def alert_cooldown_seconds(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
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
class EnsembleState:
    """
    The ensemble's state for one sensor: a checkpoint a shared store keeps beside the window.
    """
    @staticmethod
    def from_bytes(data: bytes, threshold: typing.SupportsFloat | typing.SupportsIndex, cooldown: typing.SupportsInt | typing.SupportsIndex = 100, cooldown_seconds: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> EnsembleState:
        """
        Restore a state (alarming at `threshold`, `cooldown` points held after an alarm, or with `cooldown_seconds` > 0 and `cooldown` 0 the points less than that many seconds after it); raises ValueError on corrupt bytes.
        """
    def __init__(self, threshold: typing.SupportsFloat | typing.SupportsIndex) -> None:
        """
        A new state (nothing seen) alarming at `threshold` in (0, 1].
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes of the state.
        """
    @property
    def live_from(self) -> int | None:
        """
        The state's own point count from which its points are past the warm-up (300, or later where the likelihoods' warm-up in time lasted longer); None while its likelihoods are not live yet.
        """
    @property
    def seen(self) -> int:
        """
        Points the state has learned from.
        """
    @property
    def threshold(self) -> float:
        """
        The alarm level in (0, 1].
        """
class FilterFullError(RuntimeError):
    pass
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
    def learn_dict(self, x):
        """
        learn_one of a dict; False (nothing learned) when it needs the facade's checks.
        """
    def learn_many(self, X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        """
        Learn the rows in order (releases the GIL).
        """
    def learn_one(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        """
        Learn one row of n_features values.
        """
    def score_dict(self, x):
        """
        score_one of a dict {key: value} (absent keys are missing features); None when the dict needs the facade's checks (a value that is not a finite float or int, or no set_keys).
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
    def set_keys(self, keys: collections.abc.Sequence) -> None:
        """
        Name feature j by keys[j] for score_dict and learn_dict (distinct, hashable).
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
    def has_keys(self) -> bool:
        """
        Whether set_keys has run.
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
class HyperLogLog:
    """
    HyperLogLog distinct counter.
    """
    @staticmethod
    def from_bytes(data: bytes) -> HyperLogLog:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    @staticmethod
    def from_redis(data: bytes) -> HyperLogLog:
        """
        Read a Redis HLL string (GET of a PFADD key); ValueError when it is not one.
        """
    @staticmethod
    def hash_items(items: typing.Any) -> numpy.typing.NDArray[numpy.uint64]:
        """
        The 64-bit xxHash64 of each item (what every sketch hashes).
        """
    @classmethod
    def _install_fast_method(cls: typing.Any, name: str) -> None:
        """
        Make cls.<name> (a Python method that calls this class's method of that name on self._native) call it with no Python frame.
        """
    def __init__(self, precision: typing.SupportsInt | typing.SupportsIndex = 14, redis_compatible: bool = False) -> None:
        """
        2^precision registers (precision 4..18); Redis-compatible registers need precision 14.
        """
    def _add(self, items: typing.Any) -> bool:
        """
        add() for any items (the general path).
        """
    def add(self, items):
        """
        Add items; True when a register changed.
        """
    def clear(self) -> None:
        """
        Forget every item.
        """
    def count(self) -> float:
        """
        Estimated number of distinct items.
        """
    def merge(self, others: collections.abc.Sequence[HyperLogLog]) -> None:
        """
        Fold other sketches of the same precision in.
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    def to_redis(self) -> bytes:
        """
        The dense Redis HLL string (SET it, then PFCOUNT / PFMERGE it).
        """
    @property
    def hip_valid(self) -> bool:
        """
        Whether count() is the HIP estimate (false after a merge or from Redis's bytes).
        """
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def precision(self) -> int:
        ...
    @property
    def redis_compatible(self) -> bool:
        ...
    @property
    def standard_error(self) -> float:
        ...
class IsolationForest:
    """
    Isolation Forest with scikit-learn's semantics (private core of anomaly_detection.forest.IsolationForest).
    """
    @staticmethod
    def from_bytes(data: bytes) -> IsolationForest:
        """
        Restore from to_bytes; raises ValueError on corrupt bytes.
        """
    @staticmethod
    def vector_walk_supported() -> bool:
        """
        Whether this CPU and build can take the AVX2 walk.
        """
    def __init__(self, n_estimators: typing.SupportsInt | typing.SupportsIndex = 100, max_samples: typing.SupportsInt | typing.SupportsIndex = 0, max_features: typing.SupportsInt | typing.SupportsIndex = 0, contamination: typing.SupportsFloat | typing.SupportsIndex = 0.0, bootstrap: bool = False, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Counts are resolved: max_samples 0 is 'auto', max_features 0 is all, contamination 0 is 'auto'.
        """
    def decision_function(self, X: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        score_samples - offset: negative for outliers.
        """
    def fit(self, X: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
        """
        Grow the trees on X (releases the GIL); n_threads 0 means one per core.
        """
    def mean_path_length(self, X: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        Mean path length E[h(x)] of each row over the trees.
        """
    def score_samples(self, X: numpy.ndarray[typing.Any, numpy.dtype[typing.Any]], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> numpy.typing.NDArray[numpy.float64]:
        """
        Negated anomaly score of each row (lower is more abnormal).
        """
    def set_vector_walk(self, enabled: bool) -> bool:
        """
        Allow (default) or forbid this forest the AVX2 walk; returns the previous setting. For tests and benchmarks: the scores are the same bit for bit.
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
    @property
    def scoring_layout(self) -> str:
        """
        Scoring walk: 'rank-avx2', 'rank', 'heap' or 'node' (RuntimeError before fit).
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
    def _detect(self, sensor: str, value: typing.SupportsFloat | typing.SupportsIndex, timestamp: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
        """
        detect() for any arguments (the general path).
        """
    def _detect_result(self, sensor: str, value: typing.SupportsFloat | typing.SupportsIndex, timestamp: typing.SupportsFloat | typing.SupportsIndex, threshold: typing.Any, method: typing.Any, learn: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
        """
        detect_result() for any arguments (the general path).
        """
    def clear(self) -> None:
        """
        Forget every sensor.
        """
    def detect(self, sensor, value, timestamp):
        """
        Score one point; returns (value, timestamp, is_anomaly, score, deviation, expected, window_count).
        """
    def detect_batch(self, sensor: str, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
        """
        Score points in order (releases the GIL); returns (is_anomaly, scores, deviations, expected, window_counts, alert_scores).
        """
    def detect_many(self, sensors: collections.abc.Sequence[str], values: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], timestamps: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]], threads: typing.SupportsInt | typing.SupportsIndex = 0) -> list:
        """
        Score several sensors' batches, the sensors in parallel threads without the GIL (threads=0: one per hardware thread); everything is checked before anything changes. Returns one (is_anomaly, scores, deviations, expected, window_counts, alert_scores) per sensor, in order.
        """
    def detect_result(self, sensor, value, timestamp, threshold, method, learn):
        """
        Score one point; returns the registered point result type (AnomalyResult) built without its __init__, warming up while the window count is below learn.
        """
    def point_detector(self, threshold: typing.Any, method: typing.Any, learn: int, listeners: typing.Any = None) -> typing.Any:
        """
        A callable f(sensor, value, timestamp) equal to detect_result(sensor, value, timestamp, threshold, method, learn); `listeners` is the facade's list of alert listeners.
        """
    def progress(self, sensor: str) -> tuple[int, int | None] | None:
        """
        (points seen, the point count from which the sensor's points are past the warm-up: min_samples, for the ensemble no earlier than its likelihoods went live, None while they are not) or None for an unknown sensor.
        """
    def reset(self, sensor: str) -> bool:
        """
        Forget a sensor; returns whether it existed.
        """
    def restore(self, sensor: str, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], seen: typing.SupportsInt | typing.SupportsIndex, checkpoint: EnsembleState = None, checkpoint_seen: typing.SupportsInt | typing.SupportsIndex | None = None) -> None:
        """
        Replace a sensor by the state a shared store describes: its window, point count and (ensemble) a checkpoint at `checkpoint_seen` (default: checkpoint.seen), which is copied.
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
class TDigest:
    """
    Merging t-digest.
    """
    @staticmethod
    def from_bytes(data: bytes) -> TDigest:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    @classmethod
    def _install_fast_method(cls: typing.Any, name: str) -> None:
        """
        Make cls.<name> (a Python method that calls this class's method of that name on self._native) call it with no Python frame.
        """
    def __init__(self, compression: typing.SupportsFloat | typing.SupportsIndex = 100.0) -> None:
        """
        A digest of about compression centroids.
        """
    def _add(self, values: typing.Any, weights: typing.Any = None) -> None:
        """
        add() for any values (the general path).
        """
    def add(self, values, weights = None):
        """
        Add finite values with positive weights (default 1).
        """
    def cdf(self, x: typing.Any) -> typing.Any:
        """
        Fraction of the weight below x (NaN when empty).
        """
    def centroids(self) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
        """
        (means, weights) of the centroids.
        """
    def clear(self) -> None:
        """
        Forget every value.
        """
    def max(self) -> float:
        """
        Largest value (NaN when empty).
        """
    def merge(self, others: collections.abc.Sequence[TDigest], scale_to_fit: bool = False) -> None:
        """
        Fold other digests of the same compression in; scale_to_fit halves every weight as often as a total beyond the largest double needs (else ValueError).
        """
    def min(self) -> float:
        """
        Smallest value (NaN when empty).
        """
    def quantile(self, q: typing.Any) -> typing.Any:
        """
        Values at quantiles q in [0, 1] (NaN when empty).
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    def trimmed_mean(self, low: typing.SupportsFloat | typing.SupportsIndex, high: typing.SupportsFloat | typing.SupportsIndex) -> float:
        """
        Mean of the values between quantiles low and high.
        """
    @property
    def compression(self) -> float:
        ...
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def total_weight(self) -> float:
        ...
class TopK:
    """
    HeavyKeeper top-k.
    """
    @staticmethod
    def from_bytes(data: bytes) -> TopK:
        """
        Load bytes from to_bytes; ValueError when they are corrupt.
        """
    @classmethod
    def _install_fast_method(cls: typing.Any, name: str) -> None:
        """
        Make cls.<name> (a Python method that calls this class's incrby on self._native: add with increment 1, or incrby) call it with no Python frame.
        """
    def __init__(self, k: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex = 8, depth: typing.SupportsInt | typing.SupportsIndex = 7, decay: typing.SupportsFloat | typing.SupportsIndex = 0.9, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Keep the k heaviest items.
        """
    def _add(self, items: typing.Any) -> typing.Any:
        """
        incrby(items, 1) for any items (the general path of add).
        """
    def _incrby(self, items: typing.Any, increments: typing.Any = 1) -> typing.Any:
        """
        incrby() for any items (the general path).
        """
    def count(self, items: typing.Any) -> typing.Any:
        """
        Estimated counts from the buckets.
        """
    def incrby(self, items, increments = 1):
        """
        Add increments (1..2^32-1); returns the item each one pushed out of the top k, or None.
        """
    def list(self, with_count: bool = False) -> list:
        """
        The top k, heaviest first (with counts: (item, count) pairs).
        """
    def merge(self, others: collections.abc.Sequence[TopK]) -> None:
        """
        Fold other top-k sketches with the same parameters in.
        """
    def query(self, items: typing.Any) -> typing.Any:
        """
        True where the item is in the top k.
        """
    def to_bytes(self) -> bytes:
        """
        Versioned, checksummed bytes.
        """
    @property
    def decay(self) -> float:
        ...
    @property
    def depth(self) -> int:
        ...
    @property
    def k(self) -> int:
        ...
    @property
    def memory_bytes(self) -> int:
        ...
    @property
    def width(self) -> int:
        ...
def _bypass_output_cache(on: bool) -> None:
    """
    Give every output array NumPy's own memory, the cache left as it is (benchmarks' A/B).
    """
def _install_detect(cls: typing.Any, doc: str) -> None:
    """
    Make cls.detect (StatisticalAnomalyDetector's) a method descriptor for the embedded store's hot case, falling back to cls._detect_general.
    """
def _lock_for_fork(objects: list) -> list:
    """
    fork()'s prepare step: take the locks of the registries and sketches among `objects` (others are skipped), in order, waiting without the GIL for the calls in progress; returns the objects locked. Only anomaly_detection._fork's hook calls it.
    """
def _output_cache_info() -> dict:
    """
    The output cache's blocks, bytes, limits and hit/miss counts (tests and benchmarks).
    """
def _set_output_cache_limits(max_buffers: typing.SupportsInt | typing.SupportsIndex, max_bytes: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the output cache's limits (0 keeps nothing) and empty it (tests and benchmarks).
    """
def _set_point_result_type(cls: type) -> None:
    """
    Register the class detect_result builds (AnomalyResult: a slotted class with its fields as writable object slots).
    """
def _unlock_after_fork(locked: list, in_child: bool) -> None:
    """
    fork()'s parent or child step: release the locks _lock_for_fork took (in the child they are made anew).
    """
def check_sensor_name(name: str) -> None:
    """
    Raise ValueError explaining why the name is not a valid sensor name.
    """
def detect_after_checkpoint(config: DetectorConfig, window_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], window_timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], seen: typing.SupportsInt | typing.SupportsIndex, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], checkpoint: EnsembleState = None, checkpoint_seen: typing.SupportsInt | typing.SupportsIndex | None = None) -> tuple:
    """
    As detect_after_window, but the ensemble continues from `checkpoint`, its state after the first `checkpoint_seen` <= seen points of the stream (default: checkpoint.seen), replaying only the window's last seen - checkpoint_seen points; without a usable checkpoint it is rebuilt from the window. The checkpoint object is advanced in place. Returns (is_anomaly, scores, deviations, expected, window_counts, alert_scores, state, exact): `state` is the ensemble's state after the points (None for other methods), `exact` whether the scores equal those of one process that saw every point.
    """
def detect_after_window(config: DetectorConfig, window_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], window_timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], seen: typing.SupportsInt | typing.SupportsIndex, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Score points that follow a window given as arrays (the shared-store path); returns (is_anomaly, scores, deviations, expected, window_counts, alert_scores).
    """
def detect_point_after_window(config: DetectorConfig, window_values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], window_timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], seen: typing.SupportsInt | typing.SupportsIndex, value: typing.SupportsFloat | typing.SupportsIndex, timestamp: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
    """
    detect_after_window of one point, without arrays (the shared store's single detect); returns (value, timestamp, is_anomaly, score, deviation, expected, window_count).
    """
def group_points(items: typing.Any, now: typing.SupportsFloat | typing.SupportsIndex) -> typing.Any:
    """
    {sensor: (values, timestamps)} as float64 arrays in item order, each sensor in order of first appearance, when items is a list of dicts {'type': 'point', 'sensor_name': str, 'value': int|float[, 'timestamp': int|float|None]} with finite numbers (a missing or None timestamp is now); else None.
    """
def is_valid_sensor_name(name: str) -> bool:
    """
    True when the name is usable as a sensor name (and a part of a Redis key).
    """
def json_point_entries(values: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], timestamps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> bytes:
    """
    b'{"value":v,"timestamp":t}' per point joined by newlines, each number as Python's repr writes it; ValueError if a number is not finite or the arrays differ in shape.
    """
def normal_score(z: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """
    erf(|z| / sqrt 2): one minus the two-sided tail probability.
    """
def release_memory() -> int:
    """
    Free the output memory kept for reuse and return how many bytes were freed.
    
    ``detect_batch`` and its kin keep the memory of up to 8 freed output arrays of 1 MiB or
    more (256 MiB in all) to give to the next batch of a similar size; arrays still in use
    are not touched.
    """

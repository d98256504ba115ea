"""A secret setting (SECRET_FIELDS) never appears in an error: pydantic's message repeats the input
(``input_value=...``), which would put a Redis password or an API key into logs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from anomaly_detection import Settings
from anomaly_detection.config.settings import SECRET_FIELDS

SECRET = "hunter2-s3cret"

#: An invalid value of each secret field that holds SECRET, and what the error still says.
BAD = {
    "redis_url": (f"redis://:{SECRET}@host:6379/abc", "database 'abc'"),
    "redis_password": ([SECRET], "valid string"),
    "api_keys": (f'["{SECRET}", " "]', "non-blank key"),
}


def test_every_secret_field_is_covered():
    assert set(BAD) == SECRET_FIELDS


def _error(make) -> str:
    with pytest.raises(ValidationError) as info:
        make()
    return str(info.value)


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_secret_is_not_in_the_error_of_its_field(field, monkeypatch):
    value, says = BAD[field]
    for text in (
        _error(lambda: Settings(**{field: value})),
        _error(lambda: Settings().replace(**{field: value})),
        _error(lambda: setattr(Settings(), field, value)),
    ):
        assert SECRET not in text
        assert field in text
        assert says in text
        assert "<redacted>" in text
    if isinstance(value, str):
        monkeypatch.setenv(f"ANOMALY_{field.upper()}", value)
        text = _error(Settings)
        assert SECRET not in text
        assert field in text
        assert says in text


@pytest.mark.parametrize("field", sorted(BAD))
def test_secrets_are_not_in_an_error_of_the_whole_model_or_of_another_field(field):
    value = {"redis_url": "redis://:hunter2@h/0", "redis_password": "hunter2", "api_keys": ["hunter2"]}[field]
    text = _error(lambda: Settings(**{field: value}, window_size=10, min_samples=50))
    assert "hunter2" not in text
    assert "min_samples (50) must not exceed window_size (10)" in text
    text = _error(lambda: Settings(**{field: value}, window_size=1))
    assert "hunter2" not in text
    assert "window_size" in text
    assert "input_value=1" in text

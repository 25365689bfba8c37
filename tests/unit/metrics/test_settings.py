"""metrics' settings: the design's defaults, and one line naming a bad variable."""

import pytest

from services.metrics.settings import MetricsSettings
from shared.settings import ConfigError, load


def test_defaults(monkeypatch):
    for name in ("METRICS_PORT", "METRICS_CONSUMER_GROUP", "METRICS_SCHEMA_NAME", "METRICS_REFRESH_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)
    settings = load(MetricsSettings)
    assert (settings.port, settings.consumer_group, settings.schema_name, settings.refresh_interval_s) == (
        8004,
        "ladder-metrics",
        "metrics",
        5.0,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_SCHEMA_NAME", "metrics; DROP"),
        ("METRICS_SCHEMA_NAME", "Metrics"),
        ("METRICS_REFRESH_INTERVAL_S", "0"),
        ("METRICS_PORT", "80000"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^invalid environment variable {variable}: "):
        load(MetricsSettings)

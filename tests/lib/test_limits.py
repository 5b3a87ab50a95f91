"""The operator's input limits: read from the environment, refused at start-up when malformed."""

import pytest

from genolake_assets.lib.limits import InputLimits
from genolake_assets.settings import Settings


def test_limits_default_and_follow_the_environment():
    assert InputLimits.from_env({}).max_line_bytes == 64 << 20
    assert InputLimits.from_env({"GENOLAKE_MAX_LINE_BYTES": "1000"}).max_line_bytes == 1000


@pytest.mark.parametrize("value", ["x", "0", "-5", "1.5"])
def test_a_malformed_limit_stops_the_code_location_from_loading(monkeypatch, value):
    monkeypatch.setenv("GENOLAKE_MAX_LINE_BYTES", value)
    with pytest.raises(ValueError, match="GENOLAKE_MAX_LINE_BYTES must be a whole number"):
        Settings.from_env()

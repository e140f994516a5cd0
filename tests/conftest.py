"""The fixtures every test may ask for; the parts behind them (the Kinesis
front, the ABI test host, chunk builders) are in tests/support/."""
import pytest

from tests.support.harness import fluent_bit, front_server, host, kinesis  # noqa: F401


@pytest.fixture(autouse=True)
def state_directory(tmp_path, monkeypatch):
    """The plugin's default durable state (delivery/state_directory.py) for
    whatever a test starts (test hosts, Fluent Bit): its own, per test."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    return tmp_path / "state"

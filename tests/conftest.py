"""The fixtures every test may ask for; the parts behind them (the Kinesis
front, the ABI test host, chunk builders) are in tests/support/."""
from tests.support.harness import fluent_bit, front_server, host, kinesis  # noqa: F401

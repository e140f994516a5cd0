"""Fixtures shared by the delivery tests."""
import pytest

from tests.support.raw_http import RawServer


@pytest.fixture
def serve():
    """start(answer, context=None) -> a RawServer on 127.0.0.1, closed after the test."""
    servers = []

    def start(answer, context=None):
        servers.append(RawServer(answer, context))
        return servers[-1]
    yield start
    for server in servers:
        server.close()

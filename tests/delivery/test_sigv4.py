"""delivery/sigv4.py gives the same headers as botocore's SigV4Auth, the
reference every AWS SDK for Python signs with, for the same request at the
same instant."""
import datetime
import os
import random

import pytest
from botocore import auth as botocore_auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fluentbit_kinesis.delivery.sigv4 import Signer, host_header

ENDPOINTS = [
    "https://kinesis.us-east-1.amazonaws.com",
    "https://kinesis.us-east-1.amazonaws.com/",
    "https://Kinesis.EU-West-1.amazonaws.com:443",
    "https://kinesis-fips.us-gov-west-1.amazonaws.com:8443/",
    "http://127.0.0.1:4567",
    "http://127.0.0.1:80/",
    "http://[::1]:4567",
    "https://vpce-0a1b.kinesis.eu-central-1.vpce.amazonaws.com/prefix/./a/../kinesis",
    "http://localhost:9000/path with space/",
    "http://localhost:9000/?b=2&a=1",
]
CREDENTIALS = [
    Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    Credentials("ASIAEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"),
    Credentials("ASIAEXAMPLE", "s", "token  with   spaces "),
]


def botocore_headers(credentials, endpoint, region, target, body, when, monkeypatch):
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: when)
    request = AWSRequest(method="POST", url=endpoint, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    SigV4Auth(credentials.get_frozen_credentials(), "kinesis", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["keys", "session", "spaced-token"])
def test_same_headers_as_botocore(endpoint, credentials, monkeypatch):
    rng = random.Random(endpoint)
    signer = Signer(endpoint, "us-east-1")
    for target in ("Kinesis_20131202.PutRecords", "Kinesis_20131202.ListShards"):
        for body in (b"", b'{"StreamName":"s"}', os.urandom(rng.randrange(1, 200_000))):
            seconds = rng.randrange(1_600_000_000, 1_900_000_000)
            when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)
            ours = signer.headers(credentials.get_frozen_credentials(), target, body, now=seconds)
            assert ours == botocore_headers(credentials, endpoint, "us-east-1", target, body, when, monkeypatch)


def test_signing_key_follows_the_day_and_the_secret(monkeypatch):
    """The key is cached per day and secret: a new day or rotated keys sign anew."""
    endpoint = ENDPOINTS[0]
    signer = Signer(endpoint, "eu-west-1")
    day = 1_700_000_000
    for seconds, credentials in [(day, CREDENTIALS[0]), (day + 60, CREDENTIALS[0]), (day + 86_400, CREDENTIALS[0]),
                                 (day + 86_460, CREDENTIALS[1]), (day + 86_500, CREDENTIALS[0])]:
        when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)
        ours = signer.headers(credentials.get_frozen_credentials(), "T", b"x", now=seconds)
        assert ours == botocore_headers(credentials, endpoint, "eu-west-1", "T", b"x", when, monkeypatch)


def test_host_header_as_botocore_and_http_clients_write_it():
    assert host_header("https://Kinesis.US-EAST-1.amazonaws.com:443/") == "kinesis.us-east-1.amazonaws.com"
    assert host_header("http://127.0.0.1:4567") == "127.0.0.1:4567"
    assert host_header("http://[::1]:80") == "[::1]"
    assert host_header("https://[::1]:8443") == "[::1]:8443"

"""AWS plumbing: botocore session and credentials, endpoints, and a lean
PutRecords call.

botocore (boto3's core) handles credentials (default chain, profile, static
keys, web identity, assume role).
PutRecords is the hot path: its JSON body is built directly, signed by
sigv4.py and sent over transport.py's kept-alive connections (a urllib3
pool when a proxy applies), skipping botocore's generic serializer and
validator, which cost more than the records themselves.
"""
import os
import urllib.request
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import botocore.session
import urllib3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.httpsession import get_cert_path

import orjson

from ..pipeline.entry_kernels import request_body
from . import answer_scan
from .sigv4 import Signer
from ..telemetry.redact import redact
from .transport import Transport, TransportError

DEFAULT_TIMEOUT = 60.0
TARGET_PREFIX = "Kinesis_20131202."
# request-level errors that are worth retrying within a flush
RETRYABLE_ERRORS = frozenset({
    "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
    "InternalFailure", "InternalFailureException", "ServiceUnavailable", "KMSThrottlingException",
    "ExpiredTokenException", "RequestExpired", "network", "timeout", "http",
})
# per-entry errors the service reports as throttling
THROTTLE_ERRORS = frozenset({"ProvisionedThroughputExceededException", "KMSThrottlingException",
                             "ThrottlingException", "LimitExceededException"})


class RequestError(Exception):
    """A PutRecords call that failed as a whole."""

    def __init__(self, code, message, status=None):
        message = redact(message)  # a service may quote the request, token included
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    @property
    def retryable(self):
        return self.code in RETRYABLE_ERRORS or (self.status or 0) >= 500

    @property
    def throttled(self):
        return self.code in THROTTLE_ERRORS


@dataclass
class PutAnswer:
    """A PutRecords answer. `records` are the service's own dicts, one per
    entry in order: {"SequenceNumber", "ShardId"} when acknowledged, else
    {"ErrorCode", "ErrorMessage"}; kept as they are, since building an object
    per entry costs more than the entry's whole delivery. None: every entry
    was acknowledged, and nobody needs the answers (not read)."""
    failed: int
    records: list = None

    def outcomes(self, entries):
        """(acked entries, their answers, failed entries, their answers);
        entries: indices into the flush's EntryTable."""
        if not self.failed:
            return entries, self.records, (), ()
        acked, acked_answers, failed, failed_answers = array("I"), [], array("I"), []
        for entry, answer in zip(entries, self.records):
            if "ErrorCode" in answer:
                failed.append(entry)
                failed_answers.append(answer)
            else:
                acked.append(entry)
                acked_answers.append(answer)
        return acked, acked_answers, failed, failed_answers


def make_session(settings):
    """A botocore session (boto3's core: boto3 itself costs 3 MB more and adds
    nothing here) with the configured credentials (never logged)."""
    session = botocore.session.Session(profile=settings.profile or None)
    session.set_config_variable("region", settings.region)
    if settings.access_key_id:
        session.set_credentials(settings.access_key_id, settings.secret_access_key, settings.session_token)
    if settings.role_arn:
        session = _assume_role_session(session, settings)
    return session


def _assume_role_session(base, settings):
    sts = base.create_client("sts", region_name=settings.region, endpoint_url=settings.sts_endpoint,
                      config=_client_config(settings))

    def refresh():
        params = {"RoleArn": settings.role_arn, "RoleSessionName": "fluentbit-kinesis"}
        if settings.external_id:
            params["ExternalId"] = settings.external_id
        creds = sts.assume_role(**params)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(
        metadata={"access_key": "", "secret_key": "", "token": "",
                  "expiry_time": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()},
        refresh_using=refresh, method="assume-role")
    core = botocore.session.get_session()
    core.set_config_variable("region", settings.region)
    core._credentials = credentials  # botocore has no public setter for this
    return core


def _timeout(settings):
    return float(settings.http_request_timeout) if settings.http_request_timeout else DEFAULT_TIMEOUT


def _client_config(settings):
    timeout = _timeout(settings)
    proxies = {"http": settings.http_proxy, "https": settings.http_proxy} if settings.http_proxy else None
    return Config(connect_timeout=min(timeout, 10.0), read_timeout=timeout, proxies=proxies,
                  retries={"max_attempts": 2, "mode": "standard"})


class KinesisClient:
    """One per plugin instance; safe to use from several flush threads."""

    def __init__(self, settings):
        self.settings = settings
        self.session = make_session(settings)
        self.endpoint_url = settings.endpoint or default_endpoint(settings.region)
        self.region = settings.region
        self._credentials = None  # looked up on first use, and again until found
        self.stream_field = (b'"StreamARN":' + orjson.dumps(settings.stream_arn) if settings.stream_arn
                             else b'"StreamName":' + orjson.dumps(settings.stream))
        timeout = _timeout(settings)
        self.timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        self.pool = _pool_for(self.endpoint_url, settings.http_proxy, timeout)  # pool.clear() closes it
        self.direct = isinstance(self.pool, Transport)
        self.signer = Signer(self.endpoint_url, self.region)

    def stream_params(self):
        s = self.settings
        return {"StreamARN": s.stream_arn} if s.stream_arn else {"StreamName": s.stream}

    def describe_stream(self):
        return self.call("DescribeStreamSummary", self.stream_params())["StreamDescriptionSummary"]

    def list_shards(self):
        shards, params = [], dict(self.stream_params())
        while True:
            answer = self.call("ListShards", params)
            shards.extend(answer["Shards"])
            token = answer.get("NextToken")
            if not token:
                return shards
            params = {"NextToken": token}

    def call(self, operation, params):
        """A control-plane call (DescribeStreamSummary, ListShards) through the
        same signed transport as PutRecords: a botocore client would load the
        service model, ~11 MB of memory for two calls."""
        response = self._post(operation, orjson.dumps(params))
        answer = _answer(response)
        if not isinstance(answer, dict):
            raise RequestError("http", f"malformed {operation} answer (HTTP {response.status})", response.status)
        return answer

    def put_records(self, table, indices):
        """Sends one PutRecords call of the entries at `indices` of an
        EntryTable; returns a PutAnswer. Raises RequestError when the call
        fails as a whole. Without explicit hash keys (no KPL aggregate, whose
        ShardId the acknowledgements check) an answer is first only scanned:
        all acknowledged, the usual case, builds no object per entry."""
        with request_body(self.stream_field, table, indices) as body:
            response = self._post("PutRecords", body)
        if response.status == 200 and table.hashes is None \
                and answer_scan.failed_entries(response.data, len(indices)) == 0:
            return PutAnswer(0)
        return self._parse(response, len(indices))

    def _post(self, operation, body):
        """One signed Kinesis JSON call; the raw response, or RequestError."""
        headers = self._signed_headers(body, operation)
        try:
            if self.direct:
                return self.pool.post(body, headers)
            return self.pool.urlopen("POST", self.endpoint_url, body=bytes(body), headers=headers,
                                     timeout=self.timeout, retries=False, redirect=False,
                                     preload_content=True)
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise RequestError("timeout", str(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError, TransportError) as exc:
            raise RequestError("network", str(exc)) from None

    @property
    def credentials(self):
        if self._credentials is None:
            try:
                self._credentials = self.session.get_credentials()
            except Exception as exc:  # a broken provider (bad profile, bad container URI)
                raise RequestError("CredentialsError", f"cannot get credentials: {exc}") from None
        return self._credentials

    def _signed_headers(self, body, operation="PutRecords"):
        if self.credentials is None:
            raise RequestError("NoCredentials", "no AWS credentials found (default chain, profile, "
                               "access_key_id or role_arn)")
        try:
            frozen = self.credentials.get_frozen_credentials()
        except Exception as exc:  # refresh failures: STS down, role not assumable
            raise RequestError("CredentialsError", f"cannot get credentials: {exc}") from None
        return self.signer.headers(frozen, TARGET_PREFIX + operation, body)

    @staticmethod
    def _parse(response, count):
        answer = _answer(response)
        status = response.status
        records = answer.get("Records") if isinstance(answer, dict) else None  # (a JSON array: malformed too)
        if not isinstance(records, list) or len(records) != count:
            raise RequestError("http", f"malformed PutRecords answer (HTTP {status})", status)
        failed = answer.get("FailedRecordCount")
        if type(failed) is not int:
            failed = sum(1 for r in records if "ErrorCode" in r)
        return PutAnswer(failed, records)


def default_endpoint(region):
    """Kinesis' public endpoint for a region (set `endpoint` for FIPS, VPC or
    other partitions)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://kinesis.{region}.{suffix}"


def without_nulls(value):
    """`value` with every null-valued field dropped, at any depth: Kinesis
    leaves an absent field out, kinesis-mock and others write it as null
    ("ErrorCode": null on a stored record), and both must read the same."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _answer(response):
    """The JSON answer of a call that succeeded; RequestError with the
    service's error code otherwise. Null fields count as absent."""
    data = response.data
    try:
        answer = orjson.loads(data) if data else {}
    except ValueError:
        answer = {}
    if b"null" in data:  # rare: only some endpoints write them
        answer = without_nulls(answer)
    if response.status != 200:
        answer = answer if isinstance(answer, dict) else {}
        code = str(answer.get("__type", "http")).rsplit("#", 1)[-1]
        message = answer.get("message") or answer.get("Message") or f"HTTP {response.status}"
        raise RequestError(code, message, response.status)
    return answer


def _pool_for(endpoint_url, http_proxy, timeout):
    """transport.py's lean client, or a urllib3 pool through the proxy that applies."""
    scheme = urlsplit(endpoint_url).scheme
    proxy = http_proxy
    if not proxy:
        host = urlsplit(endpoint_url).hostname or ""
        if not urllib.request.proxy_bypass(host):
            proxy = urllib.request.getproxies().get(scheme)
    ca_bundle = (os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)) if scheme == "https" else None
    if not proxy:
        return Transport(endpoint_url, timeout, ca_bundle)
    tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_bundle} if ca_bundle else {}
    return urllib3.ProxyManager(proxy, num_pools=4, maxsize=16, **tls)

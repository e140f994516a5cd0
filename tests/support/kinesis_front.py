"""A real Kinesis API on 127.0.0.1 for the tests: moto's server app behind a
small front that serializes requests (moto loses records under concurrent
PutRecords) and can inject the faults moto never produces by itself.

Faults are set on `front.faults` (a Faults) by a test:
  entry_throttle_rate / entry_internal_rate  per-entry failures in PutRecords
  request_throttle_rate                      whole request: 400 ProvisionedThroughputExceeded
  request_5xx_rate                           whole request: 500 or 503
  reset_rate                                 connection reset, nothing answered
  delay                                      seconds to wait before answering (then stored)
  down_until                                 monotonic time until which every request is reset
  hang_until                                 monotonic time until which every PutRecords is
                                             accepted and never answered (held until then,
                                             then reset; nothing stored)
  shard_limits, shard_ranges                 per-shard write limits (limited_kinesis.ShardLimits:
                                             records/s and bytes/s, one second of burst) over the
                                             (shard id, low, high) hash ranges: entries over them
                                             are throttled with the service's own answer
  script                                     fault names consumed one per PutRecords call:
      None (no fault), "reset", "5xx", "throttle", "slow" (wait slow_delay, then store and
      answer: if the client gave up, the records are stored anyway), "slow-lost" (wait
      slow_delay, then reset without storing anything)
  list_shards_down                           ListShards answers 500 (the shard map cannot be read)
  quote_request                              (status, error type): every call is answered so, with
                                             a message quoting the request's canonical string and
                                             headers, token included, as AWS's InvalidSignatureException does
  answer_nulls                               absent fields written as JSON null, as kinesis-mock
                                             does: ListShards' "EndingSequenceNumber": null for
                                             open shards, PutRecords' "ErrorCode": null for
                                             stored records, "NextToken": null

Counters say what happened; `entries_stored_late` counts entries stored by a
slow answer, the only way the plugin can legitimately produce a duplicate
(the client timed out, did not learn they were stored, and sent them again).
"""
import io
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

from moto.kinesis import models as moto_kinesis
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from tests.support.limited_kinesis import ServedInThread, ShardLimits, data_size, hash_of_entry


def _route_to_open_shards():
    """moto sends a record to the first shard whose range holds its hash, even a
    shard closed by a split or merge; Kinesis only writes to open shards.
    Resharding tests need the real behaviour. (moto's exclusive EndingHashKey
    quirk is kept, see DESIGN.md section 6.)"""
    original = moto_kinesis.Stream.get_shard_for_key
    if getattr(original, "open_shards_only", False):
        return

    def get_shard_for_key(self, partition_key, explicit_hash_key):
        shard = original(self, partition_key, explicit_hash_key)  # moto's validation and its answer
        if shard is None or shard.is_open:
            return shard
        hash_key = int(explicit_hash_key) if explicit_hash_key else \
            int.from_bytes(moto_kinesis.md5_hash(partition_key.encode("utf-8")).digest(), "big")
        for candidate in self.shards.values():
            if candidate.is_open and candidate.starting_hash <= hash_key < candidate.ending_hash:
                return candidate
        return None

    get_shard_for_key.open_shards_only = True
    moto_kinesis.Stream.get_shard_for_key = get_shard_for_key


def _keep_records_in_parent_shards():
    """moto moves a split or merged shard's records into the new shards (and on
    a merge keeps them in the parents too); Kinesis leaves them in the closed
    parents, where a consumer reads them before the children. Reading a stream
    back after a reshard needs the real layout."""
    split, merge = moto_kinesis.Stream.split_shard, moto_kinesis.Stream.merge_shards
    if getattr(split, "records_stay", False):
        return

    def reshard(original):
        def wrapper(self, *args):
            before = {shard_id: shard.records for shard_id, shard in self.shards.items()}
            original(self, *args)
            for shard_id, shard in self.shards.items():
                if shard_id in before:
                    shard.records = before[shard_id]
                else:
                    shard.records.clear()
        wrapper.records_stay = True
        return wrapper

    moto_kinesis.Stream.split_shard = reshard(split)
    moto_kinesis.Stream.merge_shards = reshard(merge)


def _constant_time_last_sequence_number():
    """moto lists all of a shard's sequence numbers to find the last one, on
    every record written: quadratic, minutes for 100,000 records."""
    def last(self):
        return next(reversed(self.records)) if self.records else 0
    moto_kinesis.Shard.get_max_sequence_number = last


_route_to_open_shards()
_keep_records_in_parent_shards()
_constant_time_last_sequence_number()


@dataclass
class Faults:
    entry_throttle_rate: float = 0.0
    entry_internal_rate: float = 0.0
    request_throttle_rate: float = 0.0
    request_5xx_rate: float = 0.0
    reset_rate: float = 0.0
    delay: float = 0.0
    down_until: float = 0.0
    hang_until: float = 0.0
    script: list = field(default_factory=list)
    list_shards_down: bool = False
    quote_request: tuple = None
    answer_nulls: bool = False
    slow_delay: float = 5.0
    shard_limits: object = None                        # a limited_kinesis.ShardLimits
    shard_ranges: list = field(default_factory=list)   # (shard id, low, high) hash ranges
    seed: int = 7


@dataclass
class Counters:
    put_records_calls: int = 0
    entries_received: int = 0
    entries_failed: int = 0
    requests_failed: int = 0
    resets: int = 0
    entries_stored: int = 0
    entries_stored_late: int = 0
    signed_by: set = field(default_factory=set)  # access key ids that signed PutRecords calls
    quoted: str = ""  # the last message that quoted a request (quote_request)


def _json_response(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _reset_connection(environ):
    """Aborts the connection with a TCP RST, as a crashed or overloaded peer does.
    SO_LINGER 0 makes the close send RST instead of FIN; dup2 of a fresh socket
    onto the connection's descriptor closes it at once (werkzeug's request
    handler still holds file objects on it, so sock.close() alone would not)."""
    sock = environ["werkzeug.socket"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with socket.socket() as spare:
        os.dup2(spare.fileno(), sock.fileno())
    raise ConnectionAbortedError("injected reset")


def _quoted_request(environ):
    """What AWS answers to a bad signature: the canonical request it computed,
    with every signed header's value (the session token too), then the
    string to sign; here with the Authorization header quoted as well."""
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN", "")
    canonical = "\n".join(["POST", "/", "", "content-type:" + environ.get("CONTENT_TYPE", ""),
                           "host:" + environ.get("HTTP_HOST", ""), "x-amz-date:" + environ.get("HTTP_X_AMZ_DATE", ""),
                           "x-amz-security-token:" + token, "x-amz-target:" + environ.get("HTTP_X_AMZ_TARGET", ""),
                           "", "content-type;host;x-amz-date;x-amz-security-token;x-amz-target", "0" * 64])
    return ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            f"Authorization: {environ.get('HTTP_AUTHORIZATION', '')}\n"
            f"X-Amz-Security-Token={token}")


class KinesisFront:
    def __init__(self):
        self.app = DomainDispatcherApplication(create_backend_app)
        self.lock = threading.Lock()
        self.faults = Faults()
        self.counters = Counters()
        self.rng = random.Random(self.faults.seed)

    def reset(self):
        self.faults = Faults()
        self.counters = Counters()
        self.rng = random.Random(7)

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.endswith(".PutRecords"):
            credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2]
            self.counters.signed_by.add(credential.split("/")[0])
        if self.faults.quote_request:
            status, kind = self.faults.quote_request
            self.counters.quoted = _quoted_request(environ)
            return _json_response(start_response, status, {"__type": kind, "message": self.counters.quoted})
        if target.endswith(".ListShards") and self.faults.list_shards_down:
            return _json_response(start_response, "500 Internal Server Error",
                                  {"__type": "InternalFailure", "message": "injected"})
        if target.endswith(".ListShards") and self.faults.answer_nulls:
            with self.lock:
                status, answer = self._forward(environ, json.loads(environ["wsgi.input"].read(
                    int(environ.get("CONTENT_LENGTH") or 0)) or b"{}"))
            answer.setdefault("NextToken", None)
            for shard in answer.get("Shards", []):
                shard.setdefault("ParentShardId", None)
                shard.setdefault("AdjacentParentShardId", None)
                shard.setdefault("SequenceNumberRange", {}).setdefault("EndingSequenceNumber", None)
            return _json_response(start_response, status, answer)
        if not target.endswith(".PutRecords"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self._put_records(environ, start_response)

    def _fault(self):
        f = self.faults
        if f.script:
            return f.script.pop(0)
        if time.monotonic() < f.down_until:
            return "reset"
        if time.monotonic() < f.hang_until:
            return "hang"
        roll = self.rng.random()
        for name, rate in (("reset", f.reset_rate), ("5xx", f.request_5xx_rate),
                           ("throttle", f.request_throttle_rate)):
            if roll < rate:
                return name
            roll -= rate
        return None

    def _put_records(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        with self.lock:
            fault = self._fault()
        delay = self.faults.slow_delay if fault in ("slow", "slow-lost") else self.faults.delay
        if fault == "hang":
            delay = max(0.0, self.faults.hang_until - time.monotonic())
        if delay:
            time.sleep(delay)  # outside the lock: other requests go on meanwhile
        request = json.loads(body)
        with self.lock:
            self.counters.put_records_calls += 1
            self.counters.entries_received += len(request["Records"])
            if fault in ("reset", "slow-lost", "hang"):
                self.counters.resets += 1
                _reset_connection(environ)
            if fault == "5xx":
                self.counters.requests_failed += 1
                status = self.rng.choice(["500 Internal Server Error", "503 Service Unavailable"])
                return _json_response(start_response, status,
                                      {"__type": "InternalFailure", "message": "injected"})
            if fault == "throttle":
                self.counters.requests_failed += 1
                return _json_response(start_response, "400 Bad Request",
                                      {"__type": "ProvisionedThroughputExceededException",
                                       "message": "Rate exceeded for stream (injected)"})
            return self._partial(environ, start_response, request, late=bool(delay))

    def _partial(self, environ, start_response, request, late=False):
        """Forwards the entries that are not chosen to fail; merges the answers."""
        f = self.faults
        failures = []
        now = time.monotonic()
        for record in request["Records"]:
            roll = self.rng.random()
            shard = self._over_limit(record, now)
            if shard:
                failures.append(ShardLimits.error(shard, request.get("StreamName", "")))
            elif roll < f.entry_throttle_rate:
                failures.append("ProvisionedThroughputExceededException")
            elif roll < f.entry_throttle_rate + f.entry_internal_rate:
                failures.append("InternalFailure")
            else:
                failures.append(None)
        forwarded = [r for r, fail in zip(request["Records"], failures) if fail is None]
        results = []
        if forwarded:
            status, answer = self._forward(environ, dict(request, Records=forwarded))
            if not status.startswith("200"):
                start_response(status, [("Content-Type", "application/x-amz-json-1.1")])
                return [json.dumps(answer).encode()]
            results = answer["Records"]
            self.counters.entries_stored += len(forwarded)
            if late:
                self.counters.entries_stored_late += len(forwarded)
        merged, it = [], iter(results)
        for fail in failures:
            if fail is None:
                merged.append(next(it))
                if f.answer_nulls:
                    merged[-1].update(ErrorCode=None, ErrorMessage=None)
            else:
                self.counters.entries_failed += 1
                merged.append(fail if isinstance(fail, dict) else {"ErrorCode": fail, "ErrorMessage": "injected"})
        return _json_response(start_response, "200 OK",
                              {"FailedRecordCount": sum(1 for x in failures if x), "Records": merged})

    def _over_limit(self, record, now):
        """The shard id when the record is over its shard's write limits (shard_limits), else None."""
        limits = self.faults.shard_limits
        if limits is None:
            return None
        point = hash_of_entry(record)
        shard = next((sid for sid, low, high in self.faults.shard_ranges if low <= point <= high), None)
        size = data_size(record["Data"]) + len(record["PartitionKey"].encode("utf-8"))
        return None if shard is None or limits.admit(shard, size, now) else shard

    def _forward(self, environ, request):
        data = json.dumps(request).encode()
        inner = dict(environ)
        inner["CONTENT_LENGTH"] = str(len(data))
        inner["wsgi.input"] = io.BytesIO(data)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return lambda chunk: None

        body = b"".join(self.app(inner, capture))
        return captured["status"], json.loads(body or b"{}")


class FrontServer(ServedInThread):
    """Serves a KinesisFront on 127.0.0.1 on a free port, in a thread."""

    def __init__(self):
        self.front = KinesisFront()
        server = make_server("127.0.0.1", 0, self.front, threaded=True)
        default_handle_error = server.handle_error

        def handle_error(request, client_address):
            if not isinstance(sys.exc_info()[1], OSError):  # injected resets end in OSError: expected
                default_handle_error(request, client_address)
        server.handle_error = handle_error
        self.serve(server)

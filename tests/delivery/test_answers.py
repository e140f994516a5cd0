"""PutRecords answers as the client reads them, over the real transport: an
answer of plain entries is first only scanned (all acknowledged: no object per
entry, no answers handed on), anything else is read in full as before (some
failed, nulls, aggregates whose ShardId the acknowledgements check), and a
malformed answer or an HTTP error is the same RequestError either way."""
import orjson
import pytest

from fluentbit_kinesis.config import Settings
from fluentbit_kinesis.delivery.client import KinesisClient, RequestError
from fluentbit_kinesis.pipeline.entry_table import EntryTable
from tests.support.raw_http import answer_with, keep_alive

PLAIN = EntryTable.from_entries([(b"a", "k1", None, 0), (b"b", "k2", None, 1), (b"c", "k3", None, 2)])
PACKED = EntryTable.from_entries([(b"a", "k1", "12", [0, 1]), (b"b", "k2", None, 2), (b"c", "k3", "7", [3])])
OK = {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}


def client_answering(serve, body, status=b"200 OK"):
    server = serve(keep_alive(lambda _request: answer_with(body, status)))
    return KinesisClient(Settings(region="us-east-1", stream="s", endpoint=server.url(),
                                  access_key_id="AKID", secret_access_key="secret"))


def test_all_acknowledged_plain_entries_are_counted_not_read(serve):
    body = orjson.dumps({"FailedRecordCount": 0, "Records": [OK] * 2})
    answer = client_answering(serve, body).put_records(PLAIN, [2, 0])
    assert answer.failed == 0 and answer.records is None
    assert list(answer.outcomes([2, 0])[0]) == [2, 0] and answer.outcomes([2, 0])[2:] == ((), ())


def test_aggregates_are_read_in_full_for_their_shard(serve):
    body = orjson.dumps({"FailedRecordCount": 0, "Records": [OK] * 3})
    answer = client_answering(serve, body).put_records(PACKED, [0, 1, 2])
    assert answer.failed == 0 and answer.records == [OK] * 3


@pytest.mark.parametrize("table", [PLAIN, PACKED])
def test_failed_entries_are_read_in_full(serve, table):
    records = [OK, THROTTLED, {**OK, "ErrorCode": None}]  # a null ErrorCode: acknowledged
    answer = client_answering(serve, orjson.dumps({"FailedRecordCount": 1, "Records": records})) \
        .put_records(table, [0, 1, 2])
    acked, acked_answers, failed, failed_answers = answer.outcomes([0, 1, 2])
    assert list(acked) == [0, 2] and list(failed) == [1]
    assert failed_answers == [THROTTLED] and acked_answers == [OK, OK]


@pytest.mark.parametrize("table", [PLAIN, PACKED])
@pytest.mark.parametrize("body, status, code", [
    (orjson.dumps({"FailedRecordCount": 0, "Records": [OK] * 2}), b"200 OK", "http"),  # one short
    (b'{"Records": "no"}', b"200 OK", "http"),
    (b"[1, 2, 3]", b"200 OK", "http"),
    (b"not json", b"200 OK", "http"),
    (b"", b"200 OK", "http"),
    (orjson.dumps({"__type": "ResourceNotFoundException", "message": "no stream"}), b"400 Bad Request",
     "ResourceNotFoundException"),
    (orjson.dumps({"FailedRecordCount": 0, "Records": [OK] * 3}), b"500 Internal Server Error", "http"),
])
def test_malformed_answers_and_http_errors_fail_the_call(serve, table, body, status, code):
    with pytest.raises(RequestError) as caught:
        client_answering(serve, body, status).put_records(table, [0, 1, 2])
    assert caught.value.code == code

"""The PutRecords answer's scan in C (csrc/fastjson_answer.c) against its
Python reference (orjson): on answers shaped as Kinesis writes them, with
failures mixed in, null ErrorCodes and other white space, the count must be
there and equal; on truncated, garbled, deep, duplicate-key and escaped-key
answers it either declines (None) or agrees, and the public function always
gives the reference's answer."""
import json
import random
from pathlib import Path

import orjson
import pytest

from fluentbit_kinesis.delivery import answer_scan

BUILT = any((Path(answer_scan.__file__).parent.parent).glob("_fastjson.*.so"))
needs_native = pytest.mark.skipif(not BUILT, reason="fluentbit_kinesis._fastjson not built (make)")

SUCCESS = {"SequenceNumber": "49546986683135544286507457936321625675700192471156785154",
           "ShardId": "shardId-000000000001"}
FAILURE = {"ErrorCode": "ProvisionedThroughputExceededException",
           "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream s under account 123456789012."}


def answer(records, **extra):
    failed = sum(1 for r in records if r.get("ErrorCode") is not None)
    return {"FailedRecordCount": failed, "Records": records, "EncryptionType": "KMS", **extra}


def random_records(rng, count):
    records = []
    for _ in range(count):
        roll = rng.random()
        record = dict(FAILURE) if roll < 0.2 else dict(SUCCESS)
        if 0.2 <= roll < 0.3:
            record["ErrorCode"] = None
        elif 0.3 <= roll < 0.35:
            record["ErrorCode"] = rng.choice(["", 0, False, [], {}, "InternalFailure", {"x": [1, None]}])
        if rng.random() < 0.2:
            record["Extra"] = random_value(rng, 3)
        records.append(dict(rng.sample(sorted(record.items()), len(record))))  # any member order
    return records


def random_value(rng, depth):
    roll = rng.randrange(8 if depth > 0 else 5)
    if roll == 0:
        return rng.choice([None, True, False])
    if roll == 1:
        return rng.randrange(-2 ** 63, 2 ** 63)
    if roll == 2:
        return rng.choice([0.5, -1.25, 3.0, 123456.789])
    if roll in (3, 4):
        return "".join(rng.choice('ab"\\/\x00\n\x1f\x7fé中😀\u2028') for _ in range(rng.randrange(0, 12)))
    if roll in (5, 6):
        return [random_value(rng, depth - 1) for _ in range(rng.randrange(0, 4))]
    return {str(rng.randrange(100)): random_value(rng, depth - 1)
            for _ in range(rng.randrange(0, 4))}


def dumps(rng, value):
    """The answer's JSON in one of several writers' styles."""
    style = rng.randrange(4)
    if style == 0:
        return orjson.dumps(value)
    if style == 1:
        return json.dumps(value, ensure_ascii=False).encode()
    if style == 2:
        return json.dumps(value, indent=rng.choice((1, 2, "\t", "\r\n ")), ensure_ascii=False).encode()
    return (" \n" + json.dumps(value, separators=(" ,\t", " :\r\n"), ensure_ascii=False) + "\r\n ").encode()


def agree(data, count, must_count=False):
    """Native and reference agree, or the native scan declined (not allowed when `must_count`)."""
    found = answer_scan.native_failed_entries(data, count)
    expected = answer_scan.failed_entries_reference(data, count)
    if must_count:
        assert found is not None and expected is not None
    if found is not None:
        assert found == expected, data[:300]
    assert answer_scan.failed_entries(data, count) == expected
    return found


@needs_native
def test_the_native_scan_is_the_one_used():
    assert answer_scan.NATIVE
    assert answer_scan.native_failed_entries(orjson.dumps(answer([FAILURE, SUCCESS])), 2) == 1


@needs_native
def test_kinesis_shaped_answers_are_counted():
    rng = random.Random(18)
    for _ in range(2000):
        count = rng.choice((0, 1, 2, 500, rng.randrange(0, 60)))
        records = random_records(rng, count)
        data = dumps(rng, answer(records))
        agree(data, count, must_count=True)
        assert agree(data, count + 1) is None  # one more or one fewer than the request: declined
        if count:
            assert agree(data, count - 1) is None


@needs_native
def test_whitespace_and_null_error_codes():
    for data, count, failed in ((b'{"Records":[]}', 0, 0),
                                (b' \t\r\n{ "Records" : [ { } , {"ErrorCode" : null } ] } \n', 2, 0),
                                (b'{"Records":[{"ErrorCode":"X"},{"ErrorCode":null},{"ErrorCode":0}]}', 3, 2),
                                (b'{"a":{"Records":1},"Records":[{"b":{"ErrorCode":1}}]}', 1, 0),
                                (b'{"n":-123456789012345678901234567890.5,"Records":[{"ErrorCode":-0}]}', 1, 1)):
        assert answer_scan.native_failed_entries(data, count) == failed == answer_scan.failed_entries_reference(data, count)


@needs_native
@pytest.mark.parametrize("data", [
    b'{"Records":[{}],"Records":[{}]}',                     # orjson keeps the last
    b'{"Records":[{"ErrorCode":"X","ErrorCode":null}]}',
    b'{"Rec\\u006frds":[{}]}',                               # may spell Records
    b'{"Records":[{"Error\\u0043ode":"X"}]}',
    b'{"Records":[{"a":"\\ud83d\\ude00"}]}',                 # a surrogate escape, even a good pair
    b'{"Records":[{"a":1e3}]}',                              # exponents: orjson may find them infinite
    b'{"Records":[{"a":' + b"9" * 400 + b'}]}',
    b'{"x":' + b"[" * 70 + b"]" * 70 + b',"Records":[{}]}',  # deeper than 64
])
def test_what_orjson_may_read_otherwise_is_declined(data):
    assert answer_scan.native_failed_entries(data, 1) is None
    agree(data, 1)


@needs_native
@pytest.mark.parametrize("data", [
    b'', b'[]', b'null', b'{"Records":{}}', b'{"Records":[1]}', b'{"Records":[[]]}', b'{"Records":[null]}',
    b'{"Records":[{}]', b'{"Records":[{}],}', b'{"Records":[{},]}', b'{"Records":[{}]}x', b'{"Records":[{}]}{}',
    b'\xef\xbb\xbf{"Records":[{}]}', b'{"Records":[{"a":"\xff"}]}', b'{"Records":[{"a":"\xed\xa0\x80"}]}',
    b'{"Records":[{"a":"\x01"}]}', b'{"Records":[{"a":01}]}', b'{"Records":[{"a":1.}]}', b'{"Records":[{"a":-}]}',
    b'{"Records":[{"a":tru}]}', b'{"Records":[{"a":"\\x"}]}', b'{"Records":[{"a":"\\u12"}]}', b"{'Records':[{}]}",
    b'{"Records":[{"ErrorCode":nul}]}', b'{"Records":[{"ErrorCode":nullx}]}', b'{"Records"[{}]}',
    b'\x0c{"Records":[{}]}', b'{"Records":[{}]}\x00',
])
def test_invalid_answers_are_declined(data):
    assert answer_scan.failed_entries_reference(data, 1) is None
    assert answer_scan.native_failed_entries(data, 1) is None


@needs_native
def test_depth_up_to_the_bound_is_read():
    for depth in (1, 30, 61, 62):  # the answer, Records and a record around it: 64 in all at most
        data = b'{"Records":[{"a":' + b"[" * depth + b"]" * depth + b'}]}'
        assert answer_scan.native_failed_entries(data, 1) == (0 if depth <= 61 else None)
        agree(data, 1)
    deep = b'{"Records":[{"a":' + b"[" * 100000 + b"]" * 100000 + b'}]}'
    assert answer_scan.native_failed_entries(deep, 1) is None  # no recursion to blow


@needs_native
def test_truncated_and_garbled_answers():
    rng = random.Random(19)
    base = orjson.dumps(answer(random_records(rng, 6), Nested={"a": [1, {"b": "é中"}]}))
    for cut in range(len(base)):
        agree(base[:cut], 6)
    for _ in range(20000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.4:
                data[at] = rng.choice(b'{}[]:,"\\ \n0-eE.nul\x00\x80\xff')
            elif roll < 0.7:
                del data[at]
            else:
                data[at:at] = bytes([rng.randrange(256)])
        agree(bytes(data), 6)


def test_other_inputs_are_the_references():
    data = orjson.dumps(answer([FAILURE]))
    assert answer_scan.native_failed_entries(data.decode(), 1) is None  # a str
    assert answer_scan.failed_entries(data.decode(), 1) == 1
    assert answer_scan.native_failed_entries(data, -1) is None
    assert answer_scan.failed_entries(memoryview(data), 1) == 1


@needs_native
def test_unicode_escapes_around_the_surrogates():
    for escape, read in ((b"\\u0041", True), (b"\\uD7FF", True), (b"\\ue000", True), (b"\\u8d00", True),
                         (b"\\ud800", False), (b"\\uDBFF", False), (b"\\uDC00", False), (b"\\udfff", False),
                         (b"\\u00g0", False), (b"\\u12", False)):
        data = b'{"Records":[{"a":"x' + escape + b'"}]}'
        assert (answer_scan.native_failed_entries(data, 1) == 0) is read, escape
        agree(data, 1)


def usual(sequence="49546986683135544286507457936321625675700192471156785154", shard="shardId-000000000001"):
    return b'{"SequenceNumber":"%s","ShardId":"%s"}' % (sequence.encode(), shard.encode())


@needs_native
def test_the_usual_record_and_every_byte_changed_in_it():
    """Kinesis's compact acknowledgement is matched in one pass (csrc/fastjson_answer_usual.c);
    any byte of it changed, dropped or doubled leaves a record the general scan reads, and
    the count is still orjson's, or the scan declines."""
    odd = [usual(""), usual("1", ""), usual("a b~\x7f!", "é"), usual("1\\n", "s"), usual("\x1f", "s")]
    for one in odd:
        agree(b'{"Records":[%s,%s]}' % (usual(), one), 2)
    middle = usual("4954698668313554428650745793632162567570019247115678515", "shardId-000000000007")
    for at in range(len(middle)):
        for changed in (middle[:at] + middle[at + 1:], middle[:at] + middle[at:at + 1] * 2 + middle[at + 1:],
                        *(middle[:at] + bytes([b]) + middle[at + 1:] for b in b'"\\ \x1f\x80\xc3a0}{,:[]')):
            for records in ((usual(), changed, usual()), (changed,), (usual(), changed)):
                data = b'{"FailedRecordCount":0,"Records":[' + b",".join(records) + b'],"EncryptionType":"KMS"}'
                agree(data, len(records))
                agree(data, len(records) + 1)

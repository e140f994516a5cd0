"""How many entries of a PutRecords answer failed, read without building a
Python object per entry (the answer of 500 acknowledged entries is 500 dicts
to orjson). This is the Python reference; the native scan (C) must agree
with it on whatever it does not decline."""
import orjson


def failed_entries(data, count):
    """The number of entries of the HTTP 200 answer `data` whose ErrorCode is
    present and not null, when `data` is a JSON object whose "Records" is an
    array of exactly `count` objects; None otherwise (the caller then reads
    the answer in full)."""
    try:
        answer = orjson.loads(data)
    except ValueError:
        return None
    records = answer.get("Records") if isinstance(answer, dict) else None
    if not isinstance(records, list) or len(records) != count or not all(isinstance(r, dict) for r in records):
        return None
    return sum(1 for r in records if r.get("ErrorCode") is not None)

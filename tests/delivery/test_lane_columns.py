"""A request's counts as lane columns read as the dict they stand for, and
change as the sender changes them (lane_columns.py)."""
from array import array

from fluentbit_kinesis.delivery.lane_columns import LaneColumns, RequestCounts


def columns():
    names = ["shardId-0", "shardId-1", "shardId-2", "unknown"]
    return LaneColumns(names, array("I", range(8)), array("I", [5] * 8), [0, 2, 4, 6, 8], [0, 1, 2, 3])


def test_a_flushs_lanes_as_columns():
    lanes = columns()
    assert list(lanes.bounds) == [0, 2, 2, 4, 4, 6, 6, 8] and list(lanes.order) == [0, 1, 2, 3]


def test_counts_read_as_shard_to_entries_bytes_throttled_in_the_requests_order():
    counts = RequestCounts(columns(), array("I", [3, 1]), array("I", [2, 2]), array("Q", [10, 10]))
    assert list(counts) == ["unknown", "shardId-1"] and "shardId-0" not in counts and len(counts) == 2
    assert counts == {"shardId-1": [2, 10, 0], "unknown": [2, 10, 0]}
    assert repr(counts) == repr({"unknown": [2, 10, 0], "shardId-1": [2, 10, 0]})


def test_counts_less_what_the_service_did_not_take():
    counts = RequestCounts(columns(), array("I", [1, 3]), array("I", [2, 2]), array("Q", [10, 10]))
    counts.less("unknown", 5, True)
    counts.less("unknown", 4, False)
    counts.less("shardId-1", 5, 1)
    assert dict(counts) == {"shardId-1": [1, 5, 1], "unknown": [0, 1, 1]}
    whole = counts.all_throttled()
    assert dict(whole) == {"shardId-1": [0, 0, 1], "unknown": [0, 0, 0]}
    assert dict(counts) == {"shardId-1": [1, 5, 1], "unknown": [0, 1, 1]}  # the request's own counts unchanged

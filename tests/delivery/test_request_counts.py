"""A request's counts as lane columns read as the dict they stand for, and
change as the sender changes them (request_counts.py)."""
from array import array

from fluentbit_kinesis.delivery.batching import LaneColumns
from fluentbit_kinesis.delivery.request_counts import LanePlan, RequestCounts


def columns():
    names = ["shardId-0", "shardId-1", "shardId-2", "unknown"]
    return LaneColumns(names, array("I", [5] * 8), [0, 2, 4, 6, 8], [0, 1, 2, 3])


def test_a_plan_reads_as_shard_to_count_in_the_plans_order():
    plan = LanePlan(columns(), array("I", [2, 0, 3]), array("I", [1, 2, 2]))
    assert list(plan.items()) == [("shardId-2", 1), ("shardId-0", 2), ("unknown", 2)]
    assert plan["unknown"] == 2 and "shardId-1" not in plan and len(plan) == 3
    assert not LanePlan(columns(), array("I"), array("I"))


def test_counts_less_what_the_service_did_not_take():
    counts = RequestCounts(columns(), array("I", [1, 3]), array("I", [2, 2]), array("Q", [10, 10]))
    assert counts == {"shardId-1": [2, 10, 0], "unknown": [2, 10, 0]}
    assert repr(counts) == repr({"shardId-1": [2, 10, 0], "unknown": [2, 10, 0]})
    counts.less("unknown", 5, True)
    counts.less("unknown", 4, False)
    counts.less("shardId-1", 5, 1)
    assert dict(counts) == {"shardId-1": [1, 5, 1], "unknown": [0, 1, 1]}
    whole = counts.all_throttled()
    assert dict(whole) == {"shardId-1": [0, 0, 1], "unknown": [0, 0, 0]}
    assert dict(counts) == {"shardId-1": [1, 5, 1], "unknown": [0, 1, 1]}  # the request's own counts unchanged

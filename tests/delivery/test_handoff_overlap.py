"""The hand-off delivers several chunks side by side while some shard has
nothing to send (a hot shard holds back only itself), in queue order of their
tickets; but one chunk at a time while requests fail, or while every shard
has work: more chunks in delivery would then only hold more records in
memory; nor while the oldest chunk in delivery is younger than JOIN_AFTER."""
import threading
import time

from fluentbit_kinesis.delivery import handoff as handoff_module
from fluentbit_kinesis.delivery.handoff import OVERLAP, HandOff
from fluentbit_kinesis.delivery.shard_order import ShardOrder
from fluentbit_kinesis.delivery.spool import Spool
from fluentbit_kinesis.telemetry.log import Logger

FLB_OK = 1
MIB = 1024 * 1024


def run_chunks(tmp_path, failing, sends_to=("hot",), chunks=6):
    """Hands `chunks` chunks over, each sending to `sends_to` of the stream's
    shards "hot" and "cold"; returns (most flushes at once, (ticket, chunk) as
    flushes began)."""
    lock, release = threading.Lock(), threading.Event()
    in_flight, began, peak = set(), [], [0]
    order = ShardOrder()
    seen = order.reserve()
    order.declare(seen, {"hot", "cold"})  # an earlier chunk sent to both
    order.leave(seen)

    def flush(data, tag, ticket):
        order.declare(ticket, sends_to)  # as Delivery.send does
        with lock:
            in_flight.add(ticket)
            began.append((ticket, data))
            peak[0] = max(peak[0], len(in_flight))
        release.wait(10)
        with lock:
            in_flight.discard(ticket)
        return FLB_OK

    handoff = HandOff(flush, None, Logger(lambda level, text: None, "t", 3), threading.Event(), 64 * MIB,
                      Spool(str(tmp_path / "spool")), order, lambda: failing)
    for i in range(chunks):
        assert handoff.take(b"chunk %d" % i, "t") == FLB_OK  # kept in the spool: delivery waits
    time.sleep(1.5)
    seen = peak[0]
    release.set()
    assert handoff.close() == 0
    return seen, began


def test_chunks_are_delivered_side_by_side_with_tickets_in_queue_order(tmp_path):
    peak, began = run_chunks(tmp_path, failing=False)
    assert peak == min(6, OVERLAP) > 1
    # the first chunk has the first ticket, and so on (their flushes may begin in any order)
    assert [data for _, data in sorted(began)] == [b"chunk %d" % i for i in range(6)]


def test_one_chunk_at_a_time_while_requests_fail(tmp_path):
    peak, began = run_chunks(tmp_path, failing=True)
    assert peak == 1
    assert [data for _, data in began] == [b"chunk %d" % i for i in range(6)]


def test_one_chunk_at_a_time_while_every_shard_has_work(tmp_path):
    peak, began = run_chunks(tmp_path, failing=False, sends_to=("hot", "cold"))
    assert peak == 1
    assert [data for _, data in began] == [b"chunk %d" % i for i in range(6)]


def test_one_chunk_at_a_time_while_the_oldest_in_delivery_is_young(tmp_path, monkeypatch):
    # a chunk delivered within JOIN_AFTER goes at the pace the process can shape it:
    # another beside it would only hold more in memory
    monkeypatch.setattr(handoff_module, "JOIN_AFTER", 60.0)
    peak, began = run_chunks(tmp_path, failing=False)
    assert peak == 1
    assert [data for _, data in began] == [b"chunk %d" % i for i in range(6)]


def test_threads_start_only_when_a_chunk_waits_for_one(tmp_path):
    # each thread that allocates gets a malloc arena of its own: a steady flow, one chunk
    # delivered before the next comes, is delivered by one thread
    delivered = []

    def flush(data, tag, ticket):
        delivered.append(data)
        return FLB_OK

    handoff = HandOff(flush, None, Logger(lambda level, text: None, "t", 3), threading.Event(), 64 * MIB,
                      Spool(str(tmp_path / "spool")), ShardOrder(), lambda: False)
    for i in range(20):
        assert handoff.take(b"chunk %d" % i, "t") == FLB_OK
    assert delivered == [b"chunk %d" % i for i in range(20)]
    assert len(handoff.threads) == 1
    assert handoff.close() == 0


def test_a_delivered_chunk_is_let_go_of_while_its_thread_waits_for_the_next(tmp_path):
    """Its copy (megabytes) is not held until the next chunk comes."""
    import tracemalloc
    handoff = HandOff(lambda data, tag, ticket: FLB_OK, None, Logger(lambda level, text: None, "t", 3),
                      threading.Event(), 64 * MIB, Spool(str(tmp_path / "spool")), ShardOrder(), lambda: False)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert handoff.take(bytes(8 * MIB), "t") == FLB_OK
        deadline = time.monotonic() + 30
        while handoff.queue and time.monotonic() < deadline:
            time.sleep(0.01)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert handoff.close() == 0
    assert held < MIB

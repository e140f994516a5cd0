"""The hand-off spool's files, and a backlog kept there only: a chunk queued
behind others is written from Fluent Bit's buffer and read back when its turn
comes, byte for byte; a file damaged or unreadable by then is set aside (kept,
counted, logged) and the queue goes on."""
import json
import os
import threading
import time

import pytest

from fluentbit_kinesis.delivery import spool as spool_module
from fluentbit_kinesis.delivery.handoff import HandOff
from fluentbit_kinesis.delivery.shard_order import ShardOrder
from fluentbit_kinesis.delivery.spool import Spool
from fluentbit_kinesis.telemetry.log import Logger

FLB_OK = 1
MIB = 1024 * 1024


def test_a_kept_chunk_reads_back_as_it_was(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    data = bytearray(os.urandom(300_000))
    name = spool.keep(memoryview(data), "kube.\udcff.log")  # any buffer, as Fluent Bit's
    assert spool.read(name) == (bytes(data), "kube.\udcff.log")
    assert spool.left() == [(len(data), "kube.\udcff.log", name)]


def test_files_of_the_earlier_format_are_read(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    path = tmp_path / "spool" / "old"
    path.write_bytes(len(b"tag").to_bytes(4, "big") + b"tag" + b"chunk bytes")
    assert spool.read(str(path)) == (b"chunk bytes", "tag")


def test_damaged_or_short_files_are_set_aside(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    for cut in (-1, 7, 15):
        name = spool.keep(b"some chunk bytes", "t")
        blob = bytearray(open(name, "rb").read())
        if cut < 0:
            blob[-3] ^= 0x01
        else:
            del blob[cut:]
        open(name, "wb").write(blob)
        assert spool.read(name) == (None, None)
        assert not os.path.exists(name)
    assert spool.corrupt == 3 and len(os.listdir(str(tmp_path / "spool") + ".corrupt")) == 3
    assert spool.read(str(tmp_path / "spool" / "gone")) == (None, None)  # missing: nothing to set aside
    assert spool.corrupt == 3


def backlog(tmp_path, chunks, damage=None):
    """Hands `chunks` over while the first one's delivery waits; `damage(path)`
    spoils the third one's file meanwhile. Returns (chunks delivered, log, hand-off)."""
    delivered, lines, release = [], [], threading.Event()

    def flush(data, tag, ticket):
        release.wait(10)
        delivered.append(bytes(data))
        return FLB_OK

    handoff = HandOff(flush, None, Logger(lambda level, text: lines.append(text), "t", 3), threading.Event(),
                      64 * MIB, Spool(str(tmp_path / "spool")), ShardOrder(), lambda: False)
    buffer = bytearray(64 * 1024)
    for chunk in chunks:
        buffer[:] = chunk  # Fluent Bit's buffer, used again once the flush returns
        assert handoff.take(memoryview(buffer), "t") == FLB_OK
    queued = list(handoff.queue)
    assert queued[0].data == chunks[0] and all(c.data is None for c in queued[1:])  # on disk only
    if damage:
        damage(queued[2].spooled)
    release.set()
    assert handoff.close() == 0
    return delivered, lines, handoff


def test_a_backlog_is_kept_on_disk_and_delivered_byte_for_byte(tmp_path):
    chunks = [os.urandom(64 * 1024) for _ in range(5)]
    delivered, _lines, _handoff = backlog(tmp_path, chunks)
    assert delivered == chunks
    assert os.listdir(tmp_path / "spool") == []


def test_a_damaged_file_in_the_backlog_is_set_aside_and_the_rest_delivered(tmp_path):
    chunks = [os.urandom(64 * 1024) for _ in range(5)]

    def flip(path):
        blob = bytearray(open(path, "rb").read())
        blob[-1] ^= 0xFF
        open(path, "wb").write(blob)

    delivered, lines, handoff = backlog(tmp_path, chunks, flip)
    assert delivered == chunks[:2] + chunks[3:]
    assert handoff.spool.corrupt == 1 and len(os.listdir(str(tmp_path / "spool") + ".corrupt")) == 1
    assert sum("damaged, missing or unreadable: set aside" in line for line in lines) == 1
    assert os.listdir(tmp_path / "spool") == []


def test_an_unreadable_file_in_the_backlog_is_tried_again_then_set_aside(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "READ_PAUSE", 0.01)
    chunks = [os.urandom(64 * 1024) for _ in range(5)]

    def unreadable(path):  # a directory where the file was: open works, read fails (EISDIR)
        os.unlink(path)
        os.mkdir(path)

    delivered, lines, handoff = backlog(tmp_path, chunks, unreadable)
    assert delivered == chunks[:2] + chunks[3:]
    assert sum("] cannot read" in line for line in lines) == spool_module.MAX_FAILED_ROUNDS
    assert handoff.spool.corrupt == 1


def test_a_released_chunk_is_emptied_unless_a_view_of_it_lives():
    data = spool_module.SpooledBytes(b"chunk bytes")
    with memoryview(data):
        data.release()  # a view lives: kept whole, as any chunk is
        assert data == b"chunk bytes"
    data.release()
    assert data == b""



def test_each_round_of_a_spooled_chunk_reads_it_again(tmp_path):
    """Chunks kept on disk only: each round gets the chunk's bytes from its
    file, as a SpooledBytes it may empty once shaped (the plugin's flush does),
    and so do the dead letters after rounds that raise."""
    chunks = [os.urandom(64 * 1024) for _ in range(3)]
    answers = {1: [2, FLB_OK], 2: ["raise"] * spool_module.MAX_FAILED_ROUNDS}  # chunk -> its rounds' answers
    rounds, given_up, gate = [], [], threading.Event()

    def flush(data, tag, ticket):
        gate.wait(10)
        index = chunks.index(bytes(data))
        rounds.append((index, type(data)))
        if index:
            data.release()
        answer = answers.get(index, [FLB_OK]).pop(0)
        if answer == "raise":
            raise ValueError("a bug")
        return answer

    handoff = HandOff(flush, lambda data, tag, reason: given_up.append(bytes(data)),
                      Logger(lambda level, text: None, "t", 3), threading.Event(), 64 * MIB,
                      Spool(str(tmp_path / "spool")), ShardOrder(), lambda: False)
    buffer = bytearray(64 * 1024)
    for chunk in chunks:
        buffer[:] = chunk  # Fluent Bit's buffer, used again once the flush returns
        assert handoff.take(memoryview(buffer), "t") == FLB_OK
    assert [c.data is None for c in handoff.queue] == [False, True, True]  # behind the first: on disk only
    gate.set()
    assert handoff.close(drain=30) == 0
    spooled = spool_module.SpooledBytes
    assert sorted(rounds, key=lambda r: r[0]) == [(0, bytes), (1, spooled), (1, spooled)] + [(2, spooled)] * 3
    assert given_up == [chunks[2]]
    assert os.listdir(tmp_path / "spool") == []


@pytest.mark.parametrize("options", [{}, {"aggregation": True}, {"compression": "zstd"}], ids=["plain", "agg", "zstd"])
def test_the_plugin_lets_go_of_a_spooled_chunk_while_its_requests_go(kinesis, tmp_path, monkeypatch, options):
    """A chunk an earlier run kept in the spool (a restart after a kill): the
    flush empties its bytes once shaped, so they are not held while its
    requests go; the round that fails reads them again, and every record is
    stored once."""
    from fluentbit_kinesis.config import Settings
    from fluentbit_kinesis.delivery.sender import Delivery
    from fluentbit_kinesis.pipeline.compression import decompress
    from fluentbit_kinesis.plugin import OutputInstance
    from tests.support.harness import REGION, make_chunk, numbered_records

    stream = kinesis.create_stream()
    settings = Settings(region=REGION, stream=stream, endpoint=kinesis.url, max_retries=0, **options)
    lines = []
    log = Logger(lambda level, text: lines.append(text), "kinesis.0", 3)
    directory = OutputInstance(settings, log, "kinesis.0")._spool_directory()
    records = numbered_records(2000, "spooled", pad="x" * 200)
    for part in (records[:1000], records[1000:]):
        Spool(directory).keep(make_chunk(part), "app")
    read, held = [], []
    read_back, send = Spool.read_back, Delivery.send
    monkeypatch.setattr(Spool, "read_back", lambda self, *a: read.append(read_back(self, *a)) or read[-1])
    monkeypatch.setattr(Delivery, "send", lambda self, *a: held.append(sum(len(d) for d, _ in read)) or send(self, *a))
    kinesis.front.faults.script = ["5xx"]  # the first request fails: max_retries 0 ends that round
    instance = OutputInstance(settings, log, "kinesis.0")
    instance.start()  # delivers what the spool holds
    deadline = time.monotonic() + 60
    while os.listdir(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    instance.close()
    assert len(read) == 3 and len(held) == 3  # a round failed, and read its chunk again
    assert held == [0, 0, 0]  # no chunk's bytes held while its requests went
    stored = [json.loads(decompress(settings.compression, data))["log"] for data in kinesis.read_all(stream).data]
    assert sorted(stored) == sorted(r["log"] for r in records)

"""The hand-off spool's files, and a backlog kept there only: a chunk queued
behind others is written from Fluent Bit's buffer and read back when its turn
comes, byte for byte; a file damaged or unreadable by then is set aside (kept,
counted, logged) and the queue goes on."""
import os
import threading

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

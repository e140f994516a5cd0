"""The per-request kernels over entry indices (csrc/fastjson_indices.c)
against their Python references: a column summed and gathered at indices,
and the ledger's line (EVENTS one run or a bitmap) of a request's events."""
import random
from array import array

import pytest

from fluentbit_kinesis.delivery import ledger
from fluentbit_kinesis.pipeline import entry_kernels, entry_kernels_native as native
from fluentbit_kinesis.pipeline.entry_table import EntryTable

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason="the native kernels are not built")


def random_indices(rng, size):
    shape = rng.choice(["run", "sample", "dupes", "one", "far"])
    if shape == "run":
        first = rng.randrange(0, 3 * size)
        return array("I", range(first, first + rng.randrange(1, size + 1)))
    if shape == "one":
        return array("I", [rng.choice([0, 1, 3, 4, 5, size, 2 ** 32 - 1])])
    if shape == "far":
        return array("I", rng.sample(range(2 ** 20), rng.randrange(1, 50)))
    picked = rng.sample(range(size), rng.randrange(1, size + 1))
    if shape == "dupes":
        picked += rng.choices(picked, k=rng.randrange(1, 10))
    rng.shuffle(picked)
    return array("I", picked)


def test_sum_and_gather_are_the_references():
    rng = random.Random(11)
    for _ in range(2000):
        column = array("I", (rng.choice([0, 1, 300, 2 ** 32 - 1]) for _ in range(rng.randrange(1, 600))))
        indices = array("I", (rng.randrange(len(column)) for _ in range(rng.randrange(0, 600))))
        assert native.sum_at(column, indices) == entry_kernels.sum_at_reference(column, indices)
        assert native.gather_at(column, indices) == array("I", map(column.__getitem__, indices))


def test_an_index_outside_the_column_declines():
    column = array("I", [5, 6, 7])
    for outside in (array("I", [3]), array("I", [0, 2 ** 32 - 1])):
        assert native.sum_at(column, outside) is None and native.gather_at(column, outside) is None
    assert native.sum_at(column, [0, 1]) is None  # not an array('I'): the reference's
    assert entry_kernels.sum_at(column, [0, 1, 1]) == 17


def test_events_at_gives_each_entrys_events():
    ones = array("I", [1, 1, 1])
    plain = EntryTable.from_columns(b"abc", array("I", [0, 1, 2]), ones, b"kkk", array("I", [0, 1, 2]), ones,
                                    array("I", [2, 2, 2]))
    assert entry_kernels.events_at(plain, array("I", [2, 0])) == array("I", [2, 0])
    packed = EntryTable.from_entries([(b"a", "k", None, [4, 5]), (b"b", "k", None, 7)])
    assert entry_kernels.events_at(packed, array("I", [1, 0])) == [7, [4, 5]]


def test_ledger_line_is_the_reference():
    """The whole line (CRC, key, time, EVENTS) byte for byte, and readable back."""
    rng = random.Random(3)
    for _ in range(3000):
        indices = random_indices(rng, rng.choice([1, 2, 7, 64, 500, 8000]))
        key, when = rng.randbytes(16), rng.choice([0, 1764644000, 2 ** 40])
        line = native.ledger_line(indices, key, when)
        assert line == ledger._line(key, when, ledger._encode_reference(list(indices)))
        if len(set(indices)) == len(indices):  # a request's events (duplicates: never, as the reference)
            events = line.decode().split()[3]
            assert ledger.to_ranges(set(indices)) == ledger._parse(events)
    key = bytes(16)
    assert native.ledger_line(array("I"), key, 1) is None  # nothing done: no line
    assert native.ledger_line([3, 4], key, 1) is None  # not an array('I'): the reference's
    assert native.ledger_line(array("I", [1]), key, -1) is None
    assert ledger._encode_reference([-1, 3]) == "-1,3"  # DEAD_LETTERS_WRITTEN


def test_sort_indices_is_sorted_and_declines_leaving_nothing_changed():
    rng = random.Random(8)
    for _ in range(2000):
        bound = rng.choice([1, 63, 64, 65, 500, 8000, 70000])
        indices = array("I", rng.sample(range(bound), rng.randrange(0, min(bound, 600) + 1)))
        before = indices[:]
        assert native.sort_indices(indices, bound) and indices == array("I", sorted(before))
        if before and rng.random() < 0.5:  # one twice, or one past the bound: declined, unchanged
            bad = before + array("I", [rng.choice([before[0], bound, 2 ** 32 - 1])])
            rng.shuffle(bad)
            copy = bad[:]
            assert not native.sort_indices(bad, bound) and bad == copy
    assert native.sort_indices(array("I"), 0)
    assert not native.sort_indices([2, 1], 3)  # not an array('I')
    ordered = array("I", [5, 1, 3])
    entry_kernels.in_chunk_order(ordered, 6)
    assert ordered == array("I", [1, 3, 5])

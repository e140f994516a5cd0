"""fj_table_columns (csrc/fastjson_indices.c): the fast path's record table
(fj_convert's 5 uint32 per record) as an EntryTable's columns, against a
Python reading of the same rules on thousands of random tables: keys read
from the chunk (present, missing: the pool's next, 256 and 257 bytes, not
UTF-8, outside the chunk), keys from the pool alone (made up, fixed), a
record not converted cleanly."""
import random
from array import array

from fluentbit_kinesis.pipeline import entry_kernels_native as native
from fluentbit_kinesis.pipeline.keys import MAX_KEY_CHARS
from tests.pipeline.test_entry_kernels import needs_native


def reference(records, count, chunk, pool, max_key):
    pool_text, pool_count, key_size, start = pool
    data_at, data_len, key_at, key_len, sizes = (array("I") for _ in range(5))
    keys, made_up, taken = b"", 0, 0
    for i in range(count):
        at, length, kat, klen, status = records[5 * i:5 * i + 5]
        if status:
            return None
        if chunk is not None and klen:
            key = bytes(chunk[kat:kat + klen])
            if kat + klen > len(chunk) or klen > max_key:
                return None
            try:
                key.decode("utf-8")
            except UnicodeDecodeError:
                return None
        else:
            k = (start + taken) % pool_count  # the pool's keys in turn
            key = pool_text[k * key_size:(k + 1) * key_size]
            taken += 1
            made_up += chunk is not None
        key_at.append(len(keys))
        key_len.append(len(key))
        keys += key
        data_at.append(at)
        data_len.append(length)
        sizes.append(length + len(key))
    # room for the keys: the chunk's size and a pool key each (each record's own key is in its
    # own bytes); keys that would need more (spans shared by records: only made up here) decline
    if len(keys) > (len(chunk) if chunk is not None else 0) + key_size * count:
        return None
    return data_at, data_len, keys, key_at, key_len, sizes, max(data_len, default=0), made_up


def random_case(rng):
    chunk = bytearray(rng.randbytes(rng.randrange(0, 600)))
    for _ in range(rng.randrange(0, 4)):  # some text, some long keys
        at = rng.randrange(0, len(chunk) + 1)
        chunk[at:at] = rng.choice([b"pod-1", "é中".encode() * 3, b"k" * 256, b"k" * 257, b"\xff\xfe"])
    count = rng.randrange(0, 30)
    records = array("I")
    for _ in range(count):
        klen = 0 if rng.random() < 0.3 else rng.choice([1, 5, 256, 257, rng.randrange(0, 40)])
        kat = rng.randrange(0, len(chunk) + 2)
        status = 1 if rng.random() < 0.02 else 0
        records.extend([rng.randrange(0, 10 ** 6), rng.randrange(0, 2 ** 20), kat, klen, status])
    if rng.random() < 0.2:
        pool = (b"fixed-key", 1, 9, 0)
    else:
        size = rng.choice([1, 16])
        n = rng.choice([1, 3, 4096])
        pool = (rng.randbytes(size * n), n, size, rng.randrange(0, n))
    return records, count, (bytes(chunk) if rng.random() < 0.8 else None), pool


@needs_native
def test_columns_are_the_reference():
    rng = random.Random(18)
    made = declined = 0
    for _ in range(5000):
        records, count, chunk, pool = random_case(rng)
        expected = reference(records, count, chunk, pool, MAX_KEY_CHARS)
        found = native.table_columns(memoryview(records), count, chunk, pool, MAX_KEY_CHARS)
        assert found == (None if expected is None else tuple(expected))
        made += found is not None
        declined += found is None
    assert made > 1000 and declined > 500  # both sides of every rule were reached


@needs_native
def test_a_record_table_shorter_than_its_count_declines():
    records = array("I", [0, 1, 0, 0, 0])
    assert native.table_columns(memoryview(records), 2, None, (b"k", 1, 1, 0), 256) is None
    assert native.table_columns(memoryview(records), 1, None, (b"k", 1, 1, 0), 256) is not None

"""Every shard's pacing state in two flat arrays, a row per shard (its slot):
doubles and int64s, as csrc/fastjson_pace.h lays them out, so the native
kernel (pace_native.py) runs a whole request's pacing in one call. A
PaceSlot is a row seen as a ShardPace: the same attributes (minute and
second as small lists over the row's cells) and ShardPace's own methods, so
the reference arithmetic runs on the row where the kernel declines, and
code that reads a shard's share or buckets reads them as before."""
from array import array

from .shard_pace import ShardPace

# fastjson_pace.h's enums, in order: FJ_PACE_D doubles and FJ_PACE_Q int64s a slot
DOUBLES = ("limit_records", "limit_bytes", "share", "ceiling", "records", "bytes", "stamp", "last_cut",
           "offered", "accepted", "answered_at", "second_start")
INTS = ("paced_records", "paced_bytes", "second_records", "second_bytes", "last_records", "last_bytes",
        "minute", "minute_bytes", "minute_throttled", "minute_held")
D, Q = len(DOUBLES), len(INTS)
_at_d, _at_q = {name: k for k, name in enumerate(DOUBLES)}, {name: k for k, name in enumerate(INTS)}
_RECORDS, _BYTES, _SHARE, _PACED = _at_d["records"], _at_d["bytes"], _at_d["share"], _at_q["paced_records"]


class PaceTable:
    """shard -> slot (made in order: slot n is the n+1th shard since the
    table was last emptied) and the rows; `views`: shard -> PaceSlot
    (ShardLimiter.shards)."""

    def __init__(self, capacity=16):
        self.d, self.q = array("d", bytes(8 * D * capacity)), array("q", bytes(8 * Q * capacity))
        self.capacity = capacity
        self.slots = {}
        self.views = {}
        self.generation = 0  # how many times emptied: a LaneColumns' slots are of one generation
        self.unpin = None  # the native module's hold on the arrays (pace_native), let go before they grow

    def reserve(self, count):
        """Room for `count` slots (the arrays grow in place: a buffer of them is let go first)."""
        if count > self.capacity:
            if self.unpin is not None:
                self.unpin()
                self.unpin = None
            more = max(count, 2 * self.capacity) - self.capacity
            self.d.frombytes(bytes(8 * D * more))
            self.q.frombytes(bytes(8 * Q * more))
            self.capacity += more

    def add(self, shard, known, now):
        """A new shard's row, as ShardPace(known, now) starts; its PaceSlot."""
        slot = len(self.slots)
        self.reserve(slot + 1)
        view = PaceSlot(self, slot)
        view.store(ShardPace(known, now))
        self.slots[shard] = slot
        self.views[shard] = view
        return view

    def register(self, shard, slot):
        """A shard the kernel made at `slot`."""
        self.slots[shard] = slot
        self.views[shard] = PaceSlot(self, slot)

    def refund(self, counts):
        """ShardLimiter.refund on the rows: shard -> (entries, bytes, _) back into its buckets."""
        d, slots = self.d, self.slots
        for shard, (records, data, _) in counts.items():
            slot = slots.get(shard)
            if slot is not None:
                d[slot * D + _RECORDS] += records
                d[slot * D + _BYTES] += data

    def shares(self, shards=None):
        """ShardLimiter.shares on the rows."""
        d, q = self.d, self.q
        return {k: (d[s * D + _SHARE] if q[s * Q + _PACED] else 1.0) for k, s in self.slots.items()
                if shards is None or k in shards}

    def clear(self):
        self.slots.clear()
        self.views.clear()
        self.generation += 1


class _Cells:
    """A few cells of the table as a list (a PaceSlot's minute and second)."""
    __slots__ = ("_cells",)

    def __init__(self, cells):
        self._cells = cells

    def __len__(self):
        return len(self._cells)

    def __iter__(self):
        return (column[at] for column, at in self._cells)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [column[at] for column, at in self._cells[k]]
        column, at = self._cells[k]
        return column[at]

    def __setitem__(self, k, value):
        if isinstance(k, slice):
            cells, values = self._cells[k], list(value)
            if len(values) != len(cells):
                raise ValueError("a row's cells are fixed")
            for (column, at), v in zip(cells, values):
                column[at] = v
        else:
            column, at = self._cells[k]
            column[at] = value

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return repr(list(self))


def _double(name):
    k = _at_d[name]
    return property(lambda self: self.table.d[self.row_d + k],
                    lambda self, value: self.table.d.__setitem__(self.row_d + k, value))


def _limit(name):
    """limit_records / limit_bytes: None (its flag 0) while the shard is not paced."""
    k, flag = _at_d[name], _at_q["paced_" + name[len("limit_"):]]

    def get(self):
        return self.table.d[self.row_d + k] if self.table.q[self.row_q + flag] else None

    def set(self, value):
        self.table.q[self.row_q + flag] = value is not None
        self.table.d[self.row_d + k] = 0.0 if value is None else value
    return property(get, set)


class PaceSlot:
    """One slot of a PaceTable as a ShardPace."""
    __slots__ = ("table", "slot", "row_d", "row_q")

    def __init__(self, table, slot):
        self.table, self.slot, self.row_d, self.row_q = table, slot, slot * D, slot * Q

    limit_records, limit_bytes = _limit("limit_records"), _limit("limit_bytes")
    share, ceiling, records, bytes = _double("share"), _double("ceiling"), _double("records"), _double("bytes")
    stamp, last_cut, answered_at = _double("stamp"), _double("last_cut"), _double("answered_at")
    offered, accepted = _double("offered"), _double("accepted")

    @property
    def minute(self):
        q, at = self.table.q, self.row_q + _at_q["minute"]
        return _Cells([(q, at + k) for k in range(4)])

    @minute.setter
    def minute(self, value):
        self.minute[:] = value

    @property
    def second(self):
        t = self.table
        return _Cells([(t.d, self.row_d + _at_d["second_start"]), (t.q, self.row_q + _at_q["second_records"]),
                       (t.q, self.row_q + _at_q["second_bytes"])])

    @second.setter
    def second(self, value):
        self.second[:] = value

    @property
    def last_second(self):
        q, at = self.table.q, self.row_q + _at_q["last_records"]
        return q[at], q[at + 1]

    @last_second.setter
    def last_second(self, value):
        q, at = self.table.q, self.row_q + _at_q["last_records"]
        q[at], q[at + 1] = value

    def store(self, pace):
        """Writes a ShardPace's every field into this row."""
        for name in ShardPace.__slots__:
            setattr(self, name, getattr(pace, name))

    rates, refill, take, take_sum, _by_sums = (ShardPace.rates, ShardPace.refill, ShardPace.take,
                                               ShardPace.take_sum, ShardPace._by_sums)
    take_one_by_one, _one_by_one, wait, answered = (ShardPace.take_one_by_one, ShardPace._one_by_one,
                                                    ShardPace.wait, ShardPace.answered)

"""A flush's entries -> per-shard lanes -> PutRecords requests.

An entry is an index into the flush's EntryTable (pipeline/entry_table.py);
a request is an array('I') of them. Lanes keep the entries per predicted
shard, in order: each round takes from the head of every lane what its
shard may take now (pacing), so a shard without tokens, or waiting out a
backoff, holds back only its own entries. A request holds at most
`max_count` entries and `max_bytes` of data plus keys, the limits the
service applies to one PutRecords call. No Python step runs per entry here:
lanes are slices of one order array, taken with array slices and sums.
"""
import random
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from itertools import accumulate, compress, filterfalse, islice, repeat
from operator import lt, mod

from ..pipeline.entry_kernels import gather_at, group as group_by_lane, in_chunk_order
from ..pipeline.entry_kernels_native import take_lanes
from .lane_columns import LaneColumns, RequestCounts

MIN_PART = 32  # entries a lane gives a request before the next one's (many shards)
ORDER_POLL = 0.05  # seconds between looks at a shard an earlier chunk still sends to
JITTER = 0.3  # of a pause for tokens, so producers pacing alike do not meet in step at the service
UNKNOWN = "unknown"  # the lane of entries without a predicted shard (pacing.UNKNOWN)


def entry_size(entry):
    """The size Kinesis counts of an entry tuple (EntryTable.sizes says it per entry)."""
    data, key = entry[0], entry[1]
    return len(data) + (len(key) if key.isascii() else len(key.encode()))


def fitting(sizes, start, max_count, max_bytes):
    """How many entries of these `sizes` from `start` fit max_count and max_bytes (the first always)."""
    count = sent = 0
    for size in islice(sizes, start, None):
        sent += size
        if count >= max_count or (count and sent > max_bytes):
            break
        count += 1
    return count


def fitting_sum(sizes, start, max_count, max_bytes):
    """(fitting's count, those entries' bytes), by sums: no Python step per entry."""
    if max_count <= 0:
        return 0, 0
    whole = sum(islice(sizes, start, start + max_count))  # the usual case: a lane's part fits whole
    if whole <= max_bytes:
        return max(0, min(max_count, len(sizes) - start)), whole
    running = list(accumulate(islice(sizes, start, start + max_count)))
    count = bisect_right(running, max_bytes) or min(1, len(running))  # the first always
    return count, running[count - 1] if count else 0


def request_plan(lanes, pace_of, max_count, max_bytes):
    """One request's parts: shard -> how many entries from the head of its
    lane, each lane's part first (so a request spans the shards), then what
    room is left. `lanes`: (shard, sizes of its entries); pace_of(shard).take_sum
    says how many of them may go now (pacing), and their bytes."""
    plan, count, size = {}, 0, 0
    part = max(MIN_PART, -(-max_count // len(lanes)))
    for part_count, part_bytes in ((part, -(-max_bytes // len(lanes))), (max_count, max_bytes)):
        for shard, sizes in lanes:
            start = plan.get(shard, 0)
            if start >= len(sizes) or (count and sizes[start] > max_bytes - size):
                continue
            more, more_bytes = pace_of(shard).take_sum(sizes, start, min(part_count, max_count - count),
                                                       min(part_bytes, max_bytes - size))
            if more:
                plan[shard] = start + more
                count += more
                size += more_bytes
                if count >= max_count:
                    return plan
    return plan


class _Views(Sequence):
    """Lanes._ready(): (shard, sizes) of every lane, made only when looked at
    (pacing's kernel reads the LaneColumns instead, a limiter without one these)."""

    def __init__(self, lanes):
        self.lanes, self.made = lanes, None

    def _made(self):
        if self.made is None:
            self.made = self.lanes._ready()
        return self.made

    def __len__(self):
        return len(self._made())

    def __getitem__(self, k):
        return self._made()[k]


class Lanes:
    """shard -> its entries still to send, in order, and the entries that
    wait out a backoff after a failure, aside: the rest of their shard goes on
    meanwhile (every entry gets its try, as in one round of requests).

    A lane is a number n: its shard columns.names[n], its entries
    order[at:end] with at, end = columns.bounds[2 n], [2 n + 1] (which the
    kernels move), after those put back in front of them (put_backs[n]:
    entries, their sizes). No object per lane: a flush may have hundreds."""

    def __init__(self, table, shards=None, ids=()):
        """`shards`: per entry of `table`, the index in `ids` of its shard, -1
        for none (ShardMap.entry_shards); None: all in one lane, UNKNOWN."""
        self.table = table
        self.names = [*ids, UNKNOWN]  # names[-1]: the lane of entries of no shard (-1)
        self.entry_shards = shards
        if shards is None:
            self.order, first, lane_names = array("I", range(table.count)), (0, table.count), [UNKNOWN]
        else:
            self.order, first = group_by_lane(shards, len(ids))
            lane_names = self.names
        self.sizes = gather_at(table.sizes, self.order)  # in lane order
        self._sizes = memoryview(self.sizes)
        # the lanes with entries, in the order their shards first appear among the entries
        # (C-level operations, as below)
        filled = compress(range(len(first) - 1), map(lt, first, islice(first, 1, None)))
        heads = sorted(map(self.order.__getitem__, map(first.__getitem__, filled)))  # each lane's first entry
        lane_of = (lambda i: 0) if shards is None else shards.__getitem__  # -1: the lane after the shards'
        found = list(map(mod, map(lane_of, heads), repeat(len(lane_names))))
        self.columns = LaneColumns(lane_names, self.order, self.sizes, first, found)
        self.lanes = dict(zip(map(lane_names.__getitem__, found), found))  # shard -> n, while it has entries
        self.put_backs = {}  # n -> (entries, their sizes) to go before order[at:end]
        self.waiting = []          # (monotonic time of the next try, entries) after a failure
        self.left = table.count    # entries not acknowledged yet (lanes and waiting)
        self.shards = set(self.lanes)  # every shard of this flush

    def __len__(self):
        return self.left

    @property
    def fronts(self):
        """How many lanes have entries put back."""
        return len(self.put_backs)

    def shard_of(self, i):
        """Entry i's shard id."""
        return UNKNOWN if self.entry_shards is None else self.names[self.entry_shards[i]]

    def _sizes_of(self, n):
        """The sizes of lane n's entries, in order (a view when none was put back)."""
        bounds = self.columns.bounds
        if n in self.put_backs:
            return self.put_backs[n][1] + self.sizes[bounds[2 * n]:bounds[2 * n + 1]]
        return self._sizes[bounds[2 * n]:bounds[2 * n + 1]]

    def take(self, limiter, now, max_count, max_bytes, blocked=frozenset()):
        """One request: (its entries, a RequestCounts: shard -> [entries,
        bytes, 0] of it) of what the shards may send now (limiter.plan), but
        none of the `blocked` ones (shard_order: an earlier chunk still sends
        there; None: all are). Tokens are taken just before the request goes,
        so the service counts them about when the limiter did."""
        self._release(now)
        columns = self.columns
        if blocked is None:
            return self._nothing()
        if blocked or self.put_backs:
            ready = self._ready(blocked)
            plan = limiter.plan(ready, max_count, max_bytes) if ready else {}
        else:  # the lanes as columns: pacing's kernel plans and takes in one call
            take_columns = getattr(limiter, "take_columns", None)
            taken = None if take_columns is None else take_columns(columns, max_count, max_bytes)
            if taken is not None:  # (): no shard may send yet
                return self._took(*taken, heads=True) if taken else self._nothing()
            plan = limiter.plan(_Views(self), max_count, max_bytes, columns) if self.lanes else {}
        taken = self._take_heads(plan) if plan and not self.put_backs else None
        if taken is not None:
            return self._took(*taken, heads=True)
        group, ns, counts, sizes = array("I"), array("I"), array("I", plan.values()), array("Q")
        for shard, count in plan.items():
            n = self.lanes[shard]
            ns.append(n)
            sizes.append(self._pop(n, count, group))
            if n not in self.put_backs and columns.bounds[2 * n] == columns.bounds[2 * n + 1]:
                del self.lanes[shard]
                columns.order.remove(n)
        return self._took(group, RequestCounts(columns, ns, counts, sizes), ())

    def _take_heads(self, plan):
        """take's usual case without pacing's kernel (no entries put back):
        every planned lane's part and its bytes in one C call; with many
        shards a request takes from hundreds of lanes. None: declined."""
        ns, counts = array("I", map(self.lanes.__getitem__, plan)), array("I", plan.values())
        taken = take_lanes(self.order, self.sizes, self.columns.bounds, ns, counts)
        if taken is None:
            return None
        group, taken_bytes, emptied = taken
        return group, RequestCounts(self.columns, ns, counts, taken_bytes), emptied

    def _nothing(self):
        """A request of no entries."""
        return array("I"), RequestCounts(self.columns, array("I"), array("I"), array("Q"))

    def _took(self, group, counts, emptied, heads=False):
        """A request taken: the lanes it emptied are done. One of lanes' heads
        only (each in chunk order) goes in chunk order: each shard's part keeps
        its order, and the body reads the table front to back."""
        if heads:
            in_chunk_order(group, self.table.count)
        if emptied:
            columns = self.columns
            deque(map(self.lanes.pop, map(columns.names.__getitem__, emptied)), maxlen=0)
            done = set(emptied)
            columns.order = array("I", filterfalse(done.__contains__, columns.order))
        self.left -= len(group)
        return group, counts

    def _ready(self, blocked=frozenset()):
        """(shard, sizes) of every lane but the `blocked` shards', in the lanes' order."""
        return [(shard, self._sizes_of(n)) for shard, n in self.lanes.items() if shard not in blocked]

    def _pop(self, n, count, group):
        """Moves `count` entries from the head of lane n to `group`; their bytes."""
        taken = 0
        front = self.put_backs.get(n)
        if front is not None:
            entries, sizes = front
            k = min(count, len(entries))
            group.extend(entries[:k])
            taken = sum(sizes[:k])
            del entries[:k], sizes[:k]
            if not entries:
                del self.put_backs[n]
            count -= k
        if count:
            bounds = self.columns.bounds
            at = bounds[2 * n]
            group.extend(self.order[at:at + count])
            taken += sum(self._sizes[at:at + count])
            bounds[2 * n] = at + count
        return taken

    def pending_shards(self):
        """The shards this flush still has entries for (in lanes or waiting)."""
        pending = set(self.lanes)
        for _, entries in self.waiting:
            pending.update(map(self.shard_of, entries))
        return pending

    def put_back(self, entries):
        """Entries of a request that must go again (throttled): at the head of their lanes, in order."""
        by_shard = {}
        for i in entries:
            by_shard.setdefault(self.shard_of(i), []).append(i)
        columns = self.columns
        for shard, back in by_shard.items():
            n = self.lanes.get(shard)
            if n is None:  # its lane was done: again, after the others
                n = self.lanes[shard] = columns.names.index(shard)
                columns.bounds[2 * n:2 * n + 2] = array("I", [0, 0])
                columns.order.append(n)
            front, sizes = self.put_backs.setdefault(n, (array("I"), array("I")))
            front[0:0] = array("I", back)
            sizes[0:0] = array("I", map(self.table.sizes.__getitem__, back))
        self.left += len(entries)

    def back_off(self, entries, until):
        """Failed entries: aside until `until`, then back at the head of their lanes."""
        self.waiting.append((until, entries))
        self.left += len(entries)

    def _release(self, now):
        due = [entries for until, entries in self.waiting if until <= now]
        if due:
            self.waiting = [(until, entries) for until, entries in self.waiting if until > now]
            for entries in reversed(due):  # the earliest failed end up first
                self.left -= len(entries)
                self.put_back(entries)

    def pause(self, limiter, now, blocked=frozenset()):
        """(seconds until an entry may go, {shard: seconds of that spent waiting
        for its tokens}); a `blocked` shard is looked at again after ORDER_POLL."""
        if blocked is None:
            waits = limiter.waits([])
        elif blocked or self.put_backs:
            waits = limiter.waits(self._ready(blocked))
        else:
            waits = limiter.waits(_Views(self), self.columns)
        pause = min([*waits.values(), *(until - now for until, _ in self.waiting)], default=0.0)
        if blocked is None or len(waits) < len(self.lanes):
            pause = min(pause, ORDER_POLL) if waits or self.waiting else ORDER_POLL
        pause = max(0.0, pause)
        if waits and pause:
            pause *= random.uniform(1.0 - JITTER, 1.0 + JITTER)  # producers' calls fall out of step
        return pause, {shard: pause for shard in waits}

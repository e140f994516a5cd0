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
from itertools import accumulate, islice

from ..pipeline.entry_kernels import gather_at, group as group_by_lane
from ..pipeline.entry_kernels_native import take_lanes

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


class _Lane:
    """One shard's entries still to send: the put-back ones first (`front`,
    their sizes), then order[at:end] of the flush; lane number n."""
    __slots__ = ("at", "end", "front", "front_sizes", "n")

    def __init__(self, at, end, n):
        self.at, self.end, self.n = at, end, n
        self.front, self.front_sizes = array("I"), array("I")


class LaneColumns:
    """The lanes as pacing's kernel reads them in one call (pace_native.py),
    while none has entries put back: lane n's shard names[n], its sizes
    sizes[bounds[2 n]:bounds[2 n + 1]], the lanes left in `order`; `slots`:
    each lane's slot in a PaceTable, as of `known`."""
    __slots__ = ("names", "sizes", "bounds", "order", "slots", "known", "pinned")

    def __init__(self, names, sizes, first, order):
        self.names, self.sizes, self.order = names, sizes, array("I", order)
        self.bounds = array("I", (first[n + k] for n in range(len(names)) for k in (0, 1)))
        self.slots, self.known, self.pinned = None, None, None  # pinned: sizes and bounds as pace_native holds them


class Lanes:
    """shard -> its entries still to send, in order, and the entries that
    wait out a backoff after a failure, aside: the rest of their shard goes on
    meanwhile (every entry gets its try, as in one round of requests)."""

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
        # lanes in the order their shards first appear among the entries
        found = sorted((self.order[first[n]], n) for n in range(len(first) - 1) if first[n] < first[n + 1])
        self.lanes = {lane_names[n]: _Lane(first[n], first[n + 1], n) for _, n in found}  # only shards with entries left
        self.columns = LaneColumns(lane_names, self.sizes, first, [n for _, n in found])
        self.fronts = 0  # lanes with entries put back
        # shard -> (shard, the sizes of its lane), in the lanes' order: what pacing reads,
        # made again only for the lanes a request changed
        self.views = {shard: (shard, self._sizes_of(lane)) for shard, lane in self.lanes.items()}
        self.waiting = []          # (monotonic time of the next try, entries) after a failure
        self.left = table.count    # entries not acknowledged yet (lanes and waiting)
        self.shards = set(self.lanes)  # every shard of this flush

    def __len__(self):
        return self.left

    def shard_of(self, i):
        """Entry i's shard id."""
        return UNKNOWN if self.entry_shards is None else self.names[self.entry_shards[i]]

    def _sizes_of(self, lane):
        """The sizes of a lane's entries, in order (a view when none was put back)."""
        if lane.front:
            return lane.front_sizes + self.sizes[lane.at:lane.end]
        return self._sizes[lane.at:lane.end]

    def take(self, limiter, now, max_count, max_bytes, blocked=frozenset()):
        """One request: (its entries, shard -> [entries, bytes, 0]) of what the
        shards may send now (limiter.plan), but none of the `blocked` ones
        (shard_order: an earlier chunk still sends there; None: all are).
        Tokens are taken just before the request goes, so the service counts
        them about when the limiter did."""
        self._release(now)
        group, counts = array("I"), {}
        if blocked is None:
            return group, counts
        ready = self._ready(blocked)
        order, sizes, columns = self.order, self._sizes, self.columns
        plan = limiter.plan(ready, max_count, max_bytes, None if blocked or self.fronts else columns) if ready else {}
        if plan and not self.fronts and self._take_heads(plan, group, counts):
            self.left -= len(group)
            return group, counts
        for shard, count in plan.items():
            lane = self.lanes[shard]
            if lane.front:
                counts[shard] = [count, self._pop(lane, count, group), 0]
                self.fronts -= not lane.front
            else:  # _pop, inline: the usual case, once per lane and request
                at = lane.at
                lane.at = end = at + count
                group.extend(order[at:end])
                counts[shard] = [count, sum(sizes[at:end]), 0]
            columns.bounds[2 * lane.n] = lane.at
            if lane.front:
                self.views[shard] = (shard, self._sizes_of(lane))
            elif lane.at == lane.end:
                del self.lanes[shard], self.views[shard]
                columns.order.remove(lane.n)
            else:  # _sizes_of, inline
                self.views[shard] = (shard, sizes[lane.at:lane.end])
        self.left -= len(group)
        return group, counts

    def _take_heads(self, plan, group, counts):
        """take's usual case (no entries put back): every planned lane's part
        and its bytes in one C call, the lanes' Python state then set to match
        (with many shards a request takes from hundreds of lanes). False:
        declined, nothing taken."""
        lanes, views, sizes, columns = self.lanes, self.views, self._sizes, self.columns
        picked = list(map(lanes.__getitem__, plan))
        taken = take_lanes(self.order, self.sizes, columns.bounds, array("I", [lane.n for lane in picked]),
                           array("I", plan.values()))
        if taken is None:
            return False
        entries, taken_bytes = taken
        group.extend(entries)
        bounds, done = columns.bounds, set()
        for (shard, count), lane, part_bytes in zip(plan.items(), picked, taken_bytes):
            counts[shard] = [count, part_bytes, 0]
            lane.at = bounds[2 * lane.n]
            if lane.at == lane.end:
                del lanes[shard], views[shard]
                done.add(lane.n)
            else:
                views[shard] = (shard, sizes[lane.at:lane.end])
        if done:
            columns.order = array("I", [n for n in columns.order if n not in done])
        return True

    def _ready(self, blocked):
        """(shard, sizes) of every lane but the `blocked` shards'."""
        if not blocked:
            return list(self.views.values())
        return [view for shard, view in self.views.items() if shard not in blocked]

    def _pop(self, lane, count, group):
        """Moves `count` entries from the head of `lane` to `group`; their bytes."""
        taken = 0
        if lane.front:
            k = min(count, len(lane.front))
            group.extend(lane.front[:k])
            taken = sum(lane.front_sizes[:k])
            del lane.front[:k], lane.front_sizes[:k]
            count -= k
        if count:
            group.extend(self.order[lane.at:lane.at + count])
            taken += sum(self._sizes[lane.at:lane.at + count])
            lane.at += count
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
        for shard, back in by_shard.items():
            lane = self.lanes.get(shard)
            if lane is None:  # its lane was done: again, after the others
                n = self.columns.names.index(shard)
                lane = self.lanes[shard] = _Lane(0, 0, n)
                self.columns.bounds[2 * n:2 * n + 2] = array("I", [0, 0])
                self.columns.order.append(n)
            self.fronts += not lane.front
            lane.front[0:0] = array("I", back)
            lane.front_sizes[0:0] = array("I", map(self.table.sizes.__getitem__, back))
            self.views[shard] = (shard, self._sizes_of(lane))
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
        else:
            waits = limiter.waits(self._ready(blocked), None if blocked or self.fronts else self.columns)
        pause = min([*waits.values(), *(until - now for until, _ in self.waiting)], default=0.0)
        if blocked is None or len(waits) < len(self.lanes):
            pause = min(pause, ORDER_POLL) if waits or self.waiting else ORDER_POLL
        pause = max(0.0, pause)
        if waits and pause:
            pause *= random.uniform(1.0 - JITTER, 1.0 + JITTER)  # producers' calls fall out of step
        return pause, {shard: pause for shard in waits}

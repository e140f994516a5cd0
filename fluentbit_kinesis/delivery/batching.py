"""Entries -> per-shard lanes -> PutRecords requests.

An entry is any tuple whose first two fields are (data bytes, partition key).
Lanes keep a flush's entries per predicted shard, in order: each round takes
from the head of every lane what its shard may take now (pacing), so a shard
without tokens, or waiting out a backoff, holds back only its own entries.
A request holds at most `max_count` entries and `max_bytes` of data plus
keys, the limits the service applies to one PutRecords call.
"""
import random
from bisect import bisect_right
from collections import deque
from itertools import accumulate, islice, repeat, starmap
from operator import itemgetter

MIN_PART = 32  # entries a lane gives a request before the next one's (many shards)
ORDER_POLL = 0.05  # seconds between looks at a shard an earlier chunk still sends to
JITTER = 0.3  # of a pause for tokens, so producers pacing alike do not meet in step at the service
_key = itemgetter(1)


def entry_size(entry):
    data, key = entry[0], entry[1]
    return len(data) + (len(key) if key.isascii() else len(key.encode()))


def requests(entries, max_count, max_bytes):
    """Yields lists of entries, each within the PutRecords limits."""
    group, group_bytes = [], 0
    for entry in entries:
        size = entry_size(entry)
        if group and (len(group) >= max_count or group_bytes + size > max_bytes):
            yield group
            group, group_bytes = [], 0
        group.append(entry)
        group_bytes += size
    if group:
        yield group


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
    """(fitting's count, those entries' bytes), by running sums: no Python step per entry."""
    running = list(accumulate(islice(sizes, start, start + max_count))) if max_count > 0 else []
    count = bisect_right(running, max_bytes) or min(1, len(running))  # the first always
    return count, running[count - 1] if count else 0


def request_plan(lanes, pace_of, max_count, max_bytes):
    """One request's parts: shard -> how many entries from the head of its
    lane, each lane's part first (so a request spans the shards), then what
    room is left. `lanes`: (shard, sizes of its entries); pace_of(shard).take
    says how many of them may go now (pacing)."""
    plan, count, size = {}, 0, 0
    part = max(MIN_PART, -(-max_count // len(lanes)))
    for part_count, part_bytes in ((part, -(-max_bytes // len(lanes))), (max_count, max_bytes)):
        for shard, sizes in lanes:
            start = plan.get(shard, 0)
            if start >= len(sizes) or (count and sizes[start] > max_bytes - size):
                continue
            more = pace_of(shard).take(sizes, start, min(part_count, max_count - count),
                                       min(part_bytes, max_bytes - size))
            if more:
                plan[shard] = start + more
                count += more
                size += sum(islice(sizes, start, start + more))
                if count >= max_count:
                    return plan
    return plan


class Lanes:
    """shard -> its entries still to send and their sizes (two deques, in
    order), and the entries that wait out a backoff after a failure, aside:
    the rest of their shard goes on meanwhile (every entry gets its try, as in
    one round of requests)."""

    def __init__(self, entries, predict_shard, predict_keys=None):
        self.lanes = lanes = {}        # only shards with entries left
        self.shard_of = predict_shard  # an entry's shard again (put back after a failure)
        self.waiting = []              # (monotonic time of the next try, entries) after a failure
        self.left = len(entries)       # entries not acknowledged yet (lanes and waiting)
        by_key = {}  # partition key -> shard, this flush: keys repeat (every entry passes here)
        if predict_keys is not None:  # every key's shard at once, as predict_shard would say
            keys = list(dict.fromkeys(map(_key, entries)))
            by_key = dict(zip(keys, predict_keys(keys)))
        for entry in entries:
            key = entry[1]
            shard = by_key.get(key) if entry[2] is None else None
            if shard is None:
                shard = predict_shard(entry)
                if entry[2] is None:
                    by_key[key] = shard
            lane = lanes.get(shard)
            if lane is None:
                lane = lanes[shard] = (deque(), deque())
            lane[0].append(entry)
            lane[1].append(len(entry[0]) + (len(key) if key.isascii() else len(key.encode())))
        self.shards = set(lanes)  # every shard of this flush

    def __len__(self):
        return self.left

    def take(self, limiter, now, max_count, max_bytes, blocked=frozenset()):
        """One request: (its entries, shard -> [entries, bytes, 0]) of what the
        shards may send now (limiter.plan), but none of the `blocked` ones
        (shard_order: an earlier chunk still sends there; None: all are).
        Tokens are taken just before the request goes, so the service counts
        them about when the limiter did."""
        self._release(now)
        if blocked is None:
            return [], {}
        ready = [(shard, sizes) for shard, (_, sizes) in self.lanes.items() if shard not in blocked]
        group, counts = [], {}
        for shard, count in (limiter.plan(ready, max_count, max_bytes) if ready else {}).items():
            entries, sizes = self.lanes[shard]
            # popleft `count` times in C (starmap): half the time of a list comprehension
            group += starmap(entries.popleft, repeat((), count))
            counts[shard] = [count, sum(starmap(sizes.popleft, repeat((), count))), 0]
            if not entries:
                del self.lanes[shard]
        self.left -= len(group)
        return group, counts

    def pending_shards(self):
        """The shards this flush still has entries for (in lanes or waiting)."""
        pending = set(self.lanes)
        for _, entries in self.waiting:
            pending.update(map(self.shard_of, entries))
        return pending

    def put_back(self, entries):
        """Entries of a request that must go again (throttled): at the head of their lanes, in order."""
        by_shard = {}
        for entry in entries:
            by_shard.setdefault(self.shard_of(entry), []).append(entry)
        for shard, back in by_shard.items():
            lane = self.lanes.setdefault(shard, (deque(), deque()))
            lane[0].extendleft(reversed(back))
            lane[1].extendleft(entry_size(entry) for entry in reversed(back))
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
        waits = limiter.waits([(shard, sizes) for shard, (_, sizes) in self.lanes.items()
                               if blocked is not None and shard not in blocked])
        pause = min([*waits.values(), *(until - now for until, _ in self.waiting)], default=0.0)
        if blocked is None or len(waits) < len(self.lanes):
            pause = min(pause, ORDER_POLL) if waits or self.waiting else ORDER_POLL
        pause = max(0.0, pause)
        if waits and pause:
            pause *= random.uniform(1.0 - JITTER, 1.0 + JITTER)  # producers' calls fall out of step
        return pause, {shard: pause for shard in waits}

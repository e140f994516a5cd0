"""Entries -> per-shard lanes -> PutRecords requests.

An entry is any tuple whose first two fields are (data bytes, partition key).
Lanes keep a flush's entries per predicted shard, in order: each round takes
from the head of every lane what its shard may take now (pacing), so a shard
without tokens, or waiting out a backoff, holds back only its own entries.
A request holds at most `max_count` entries and `max_bytes` of data plus
keys, the limits the service applies to one PutRecords call.
"""
import random
from collections import deque

JITTER = 0.3  # of a pause for tokens, so producers pacing alike do not meet in step at the service


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


class Lanes:
    """shard -> its entries still to send (a deque, in order), and the entries
    that wait out a backoff after a failure, aside: the rest of their shard
    goes on meanwhile (every entry gets its try, as in one round of requests)."""

    def __init__(self, entries, predict_shard):
        self.lanes = {}
        self.shards = {}   # id(entry) -> its shard, predicted once
        self.waiting = []  # (monotonic time of the next try, entries) after a failure
        for entry in entries:
            shard = self.shards[id(entry)] = predict_shard(entry)
            lane = self.lanes.get(shard)
            if lane is None:
                lane = self.lanes[shard] = deque()
            lane.append(entry)

    def shard_of(self, entry):
        return self.shards[id(entry)]

    def __len__(self):
        return sum(len(lane) for lane in self.lanes.values()) + sum(len(e) for _, e in self.waiting)

    def take(self, limiter, now, max_count, max_bytes):
        """One request: what the shards may send now, within the PutRecords
        limits, each shard given an equal part first. Tokens are taken just
        before the request goes, so the service counts them at about the same
        time as the limiter did."""
        self._release(now)
        ready = [(shard, lane) for shard, lane in self.lanes.items() if lane]
        # a request goes once a shard has a batch of tokens (not one per few tokens);
        # then every shard gives what it has
        if not any(limiter.wait(shard, lane) <= 0 for shard, lane in ready):
            return []
        group, size = [], 0
        for part in (max(1, max_count // len(ready)), max_count):  # equal parts, then what is left
            part_bytes = max_bytes // len(ready) if part < max_count else max_bytes
            for shard, lane in ready:
                room = max_bytes - size
                if not lane or (group and entry_size(lane[0]) > room):
                    continue
                count = limiter.take(shard, lane, min(part, max_count - len(group)), min(part_bytes, room))
                for _ in range(count):
                    entry = lane.popleft()
                    size += entry_size(entry)
                    group.append(entry)
                if len(group) >= max_count:
                    return group
        return group

    def put_back(self, entries):
        """Entries of a request that must go again (throttled): at the head of their lanes, in order."""
        by_shard = {}
        for entry in entries:
            by_shard.setdefault(self.shard_of(entry), []).append(entry)
        for shard, back in by_shard.items():
            self.lanes.setdefault(shard, deque()).extendleft(reversed(back))

    def back_off(self, entries, until):
        """Failed entries: aside until `until`, then back at the head of their lanes."""
        self.waiting.append((until, entries))

    def _release(self, now):
        due = [entries for until, entries in self.waiting if until <= now]
        if due:
            self.waiting = [(until, entries) for until, entries in self.waiting if until > now]
            for entries in reversed(due):  # the earliest failed end up first
                self.put_back(entries)

    def pause(self, limiter, now):
        """(seconds until an entry may go, {shard: seconds of that spent waiting for its tokens})."""
        waits = {shard: limiter.wait(shard, lane) for shard, lane in self.lanes.items() if lane}
        pause = min([*waits.values(), *(until - now for until, _ in self.waiting)], default=0.0)
        pause = max(0.0, pause)
        if waits and pause:
            pause *= random.uniform(1.0 - JITTER, 1.0 + JITTER)  # producers' calls fall out of step
        return pause, {shard: pause for shard in waits}

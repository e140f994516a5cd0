"""Entries -> PutRecords-sized groups, in order.

An entry is any tuple whose first two fields are (data bytes, partition key);
a group holds at most `max_count` entries and `max_bytes` of data plus keys,
the limits the service applies to one PutRecords call.
"""


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

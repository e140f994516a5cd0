"""The data's way: a chunk's msgpack bytes -> records -> Kinesis entries.

events (decode) -> shaping (payload and partition key; the native fast path
in fastpath, the Python path as the reference; both give a ShapedChunk; with
field_format, formats/ writes each record in a schema's names, natively by
per-shape plans in fastformat) ->
compression -> aggregation (KPL aggregates, shard aware; kpl the format, kpl_native
the per-record part in C). What cannot be sent
leaves as data (rejects.DeadLetter), never as a write.

Owns no I/O and no state across chunks (but memory: scratch keeps the C
code's large buffers for the next chunk). May import: the standard library,
msgpack, orjson, the compressors, and ..telemetry. Never ..delivery.
"""

"""Kinesis entries -> the stream, exactly once.

client (credentials, signing; HTTP by transport: kept-alive
connections, urllib3 behind a proxy) -> sender (PutRecords with retries of
what failed only, in requests cut from per-shard lanes by batching, paced at
each shard's write limit by pacing, one limiter per stream: limiters;
chunks side by side, each shard's records in chunk order: shard_order) ->
acknowledgements -> chunk_progress and ledger (what is done, across tries and
restarts); shards (the stream's shard map), handoff (flushes on Fluent Bit's
engine thread; spool: chunks it acknowledged before delivery; rounds: a
chunk's flush until delivered), dead_letters (the file), dry_run (a client that sends
nothing), counted_client (calls counted into telemetry).

May import: ..pipeline (the types it delivers) and ..telemetry.
"""

/* fastjson_pace.h: fastjson_pace.c, pacing's per-request work (issue 18)
 * for delivery/pace_native.py: ShardLimiter.plan's and .answered's loops
 * over the shards of one request, on every shard's state kept in two flat
 * arrays (delivery/pace_table.py), a row per slot: FJ_PACE_D doubles and
 * FJ_PACE_Q int64s. Exactly delivery/shard_pace.py's floats (the same
 * operations in the same order; built with -ffp-contract=off).
 *
 * The constants are pacing's, copied from Python when the table is made.
 * `live` slots are in use (0 to live - 1); a shard a call meets for the first
 * time (slot -1) is made at slot `live` then, after emptying the table when
 * it holds max_shards (ShardLimiter._pace; every slots[] then -1): its lane goes to created[],
 * and info[] says [how many created, from which one on they count, whether
 * the table was emptied]; created_cap: 3 n for a plan (a lane meets its
 * pace up to 3 times), n for an answer. Both calls check what they are given
 * first (FJ_DECLINE, nothing changed): slots, lengths, limits, room, values.
 * FJ_PACE_FULL: the table or created[] had no room after all (a bug). */
#ifndef FASTJSON_PACE_H
#define FASTJSON_PACE_H

#include <stddef.h>
#include <stdint.h>

#define FJ_PACE_FULL (-3)

/* a slot's doubles */
enum { FJ_PD_LIMIT_RECORDS, FJ_PD_LIMIT_BYTES, FJ_PD_SHARE, FJ_PD_CEILING, FJ_PD_RECORDS, FJ_PD_BYTES,
       FJ_PD_STAMP, FJ_PD_LAST_CUT, FJ_PD_OFFERED, FJ_PD_ACCEPTED, FJ_PD_ANSWERED_AT, FJ_PD_SECOND_START,
       FJ_PACE_D };
/* a slot's int64s: whether limit_records / limit_bytes are set (not None), the
 * second's and the last second's accepted records and bytes, minute[4] */
enum { FJ_PQ_PACED_RECORDS, FJ_PQ_PACED_BYTES, FJ_PQ_SECOND_RECORDS, FJ_PQ_SECOND_BYTES,
       FJ_PQ_LAST_RECORDS, FJ_PQ_LAST_BYTES, FJ_PQ_MINUTE, FJ_PACE_Q = FJ_PQ_MINUTE + 4 };

struct fj_pace_table {
    double *d;            /* d_n of them: capacity * FJ_PACE_D at least */
    int64_t *q;           /* q_n of them: capacity * FJ_PACE_Q at least */
    size_t d_n, q_n, capacity, live, max_shards;
    double limit_records, limit_bytes, ceiling, burst, min_share, unknown_ceiling, cooldown, window,
           keep, min_cut, max_cut, probe_base, probe_quiet, batch, exact, min_records, min_bytes;
    int64_t min_part;
};

/* One request's plan (ShardLimiter.plan): lane k's entry sizes are sizes[bounds[2 k]]
 * up to sizes[bounds[2 k + 1]] (n_lanes lanes, sizes_n sizes), slots[k] its shard's
 * slot or -1 (updated), `unknown` the lane of the shard `unknown` or -1; the
 * request's lanes are order[0] to order[n - 1]; counts[]: n of room to work in.
 * Returns how many lanes go, or FJ_DECLINE: planned[j], the jth lane (a lane
 * number, as order[] holds them), gives planned_counts[j] entries, in the
 * plan's order. */
int fj_pace_plan(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                 const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                 int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts, uint32_t *planned,
                 uint32_t *planned_counts, uint32_t *created, size_t created_cap, size_t *info);

/* fj_pace_plan, then the planned entries taken from their lanes' heads as
 * fj_take_lanes does (`entries`: every entry in lane order, sizes[] in that
 * order too; bounds moved): group[] gets took[0] entries (group_cap >=
 * max_count), taken[j] planned[j]'s bytes, emptied[] (n of room) the
 * took[1] lanes it emptied; seen[]: n_lanes bytes to work in (order[] must
 * be distinct lanes). Returns the plan's count, or FJ_DECLINE having changed
 * nothing (FJ_PACE_FULL: the take failed after the plan, a bug). */
int fj_pace_take(struct fj_pace_table *t, double now, const uint32_t *entries, const uint32_t *sizes,
                 size_t sizes_n, uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                 int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts, uint32_t *planned,
                 uint32_t *planned_counts, uint32_t *created, size_t created_cap, size_t *info, uint32_t *group,
                 size_t group_cap, uint64_t *taken, uint32_t *emptied, size_t *took, uint8_t *seen);

/* ShardLimiter.waits: waits[i], the seconds until order[i]'s lane can take a
 * batch (lanes as for fj_pace_plan; created_cap: n). Returns n, or FJ_DECLINE. */
int fj_pace_waits(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                  const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                  int64_t unknown, double *waits, uint32_t *created, size_t created_cap, size_t *info);

/* One answer (ShardLimiter.answered): for i < n, the shard of lane lanes[i]
 * (of n_lanes, slots[] and `unknown` as above; lanes NULL: lane i of n) had
 * acked[i] entries acknowledged, of acked_bytes[i] bytes, and throttled[i]
 * throttled. Returns how many shares were cut, or FJ_DECLINE. */
int fj_pace_answered(struct fj_pace_table *t, double now, const uint32_t *lanes, size_t n, size_t n_lanes,
                     int32_t *slots, int64_t unknown, const uint32_t *acked, const uint64_t *acked_bytes,
                     const uint32_t *throttled, uint32_t *created, size_t created_cap, size_t *info);

/* ---- fastjson_pace.c, for fastjson_pace_plan.c: one shard (slot s) ---------- */

#define FJ_PACE_HIDDEN __attribute__((visibility("hidden")))
/* ShardPace(known, now), its refill(now), its wait(sizes) (sizes: len >= 1 of them) */
FJ_PACE_HIDDEN void fj_pace_init(const struct fj_pace_table *t, size_t s, int known, double now);
FJ_PACE_HIDDEN void fj_pace_refill(const struct fj_pace_table *t, size_t s, double now);
FJ_PACE_HIDDEN double fj_pace_wait(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t len);
/* ShardPace.take_sum(sizes, start, max_count, max_bytes), start < len: the count; *sent their bytes */
FJ_PACE_HIDDEN int64_t fj_pace_take_sum(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t len,
                                        size_t start, int64_t max_count, int64_t max_bytes, int64_t *sent);
/* ShardPace.answered(acked, acked_bytes, throttled, now): 1 when it cut the share */
FJ_PACE_HIDDEN int fj_pace_answer(const struct fj_pace_table *t, size_t s, int64_t acked, int64_t acked_bytes,
                                  int64_t throttled, double now);

#endif

/* fastjson_pace_plan.c: pacing's per-request work (fastjson_pace.h):
 * ShardLimiter.plan (any lane ready, then batching.request_plan) and
 * ShardLimiter.answered over a request's shards, each shard's arithmetic in
 * fastjson_pace.c; its slot found or made as ShardLimiter._pace does, the
 * table emptied at max_shards even within a request. Everything Python
 * hands over is checked before anything changes. */
#include "fastjson.h"
#include "fastjson_pace.h"

#define MAX_COUNT (1 << 20)           /* sums of fewer uint32 sizes stay below 2**53 */
#define MAX_VALUE (INT64_C(1) << 53)
#define MAX_TALLY (INT64_C(1) << 62)  /* a counter that can still grow by MAX_VALUE several times */

struct lanes {
    const uint32_t *sizes;   /* lane k: sizes[bounds[2 k]] to sizes[bounds[2 k + 1]] */
    const uint32_t *bounds;
    const uint32_t *order;   /* the request's lanes: order[i], n of them (NULL: lane i) */
    size_t n, n_lanes;
    int32_t *slots;          /* per lane */
    int64_t unknown;
    uint32_t *created;
    size_t created_cap;
    size_t *info;
};

static size_t lane_at(const struct lanes *l, size_t i) { return l->order ? l->order[i] : i; }

/* ShardLimiter._pace: the slot of the request's ith lane, made (and the table
 * emptied when full) at its first use, refilled */
static int64_t pace_of(struct fj_pace_table *t, const struct lanes *l, size_t i, double now)
{
    size_t k = lane_at(l, i);
    if (l->slots[k] < 0) {
        if (t->live >= t->max_shards) {  /* every slot known so far is forgotten */
            t->live = 0;
            for (size_t j = 0; j < l->n_lanes; j++)
                l->slots[j] = -1;
            l->info[1] = l->info[0];
            l->info[2] = 1;
        }
        if (t->live >= t->capacity || l->info[0] >= l->created_cap)  /* the caller made room: never */
            return -1;
        l->slots[k] = (int32_t)t->live++;
        fj_pace_init(t, (size_t)l->slots[k], (int64_t)k != l->unknown, now);
        l->created[l->info[0]++] = (uint32_t)k;
    }
    fj_pace_refill(t, (size_t)l->slots[k], now);
    return l->slots[k];
}

/* batching.request_plan, after ShardLimiter.plan found some lane ready */
static int request_plan(struct fj_pace_table *t, const struct lanes *l, double now, int64_t max_count,
                        int64_t max_bytes, uint32_t *counts, uint32_t *order)
{
    int64_t n = (int64_t)l->n, count = 0, size = 0, planned = 0, share = (max_count + n - 1) / n;
    int64_t limits[2][2] = { { share > t->min_part ? share : t->min_part, (max_bytes + n - 1) / n },
                             { max_count, max_bytes } };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < l->n; i++) {
            size_t k = lane_at(l, i), start = counts[i], len = l->bounds[2 * k + 1] - l->bounds[2 * k];
            const uint32_t *sizes = l->sizes + l->bounds[2 * k];
            if (start >= len || (count && sizes[start] > max_bytes - size))
                continue;
            int64_t slot = pace_of(t, l, i, now), more_bytes;
            if (slot < 0)
                return FJ_PACE_FULL;
            int64_t room = max_count - count, room_bytes = max_bytes - size;
            int64_t more = fj_pace_take_sum(t, (size_t)slot, sizes, len, start,
                                            limits[pass][0] < room ? limits[pass][0] : room,
                                            limits[pass][1] < room_bytes ? limits[pass][1] : room_bytes, &more_bytes);
            if (more) {
                if (!start)
                    order[planned++] = (uint32_t)i;
                counts[i] = (uint32_t)(start + (size_t)more);
                count += more;
                size += more_bytes;
                if (count >= max_count)
                    return (int)planned;
            }
        }
    }
    return (int)planned;
}

/* what both calls check first: the table's room and constants, the lanes' slots */
static int check_table(const struct fj_pace_table *t, const struct lanes *l)
{
    size_t n = l->n;
    if (!t->d || !t->q || t->capacity > t->d_n / FJ_PACE_D || t->capacity > t->q_n / FJ_PACE_Q
        || t->live > t->capacity || !t->max_shards || n > INT32_MAX || l->n_lanes > INT32_MAX
        || l->unknown < -1 || l->unknown >= (int64_t)l->n_lanes || l->created_cap < n
        || t->capacity < (t->max_shards < t->live + n ? t->max_shards : t->live + n)
        || t->capacity > INT32_MAX || !(t->exact <= 4503599627370496.0) || t->min_part < 1)  /* 2**52 */
        return FJ_DECLINE;
    for (size_t k = 0; k < l->n_lanes; k++) {
        int32_t slot = l->slots[k];
        if (slot < -1 || slot >= (int64_t)t->live)
            return FJ_DECLINE;
        for (int f = FJ_PQ_SECOND_RECORDS; slot >= 0 && f < FJ_PACE_Q; f++) {
            int64_t v = t->q[(size_t)slot * FJ_PACE_Q + (size_t)f];
            if (v > MAX_TALLY || v < -MAX_TALLY)
                return FJ_DECLINE;
        }
    }
    return FJ_OK;
}

/* the request's lanes within the lanes, not empty, within sizes */
static int check_lanes(const struct lanes *l, size_t sizes_n)
{
    for (size_t i = 0; i < l->n; i++) {
        size_t k = l->order[i];
        if (k >= l->n_lanes || l->bounds[2 * k] >= l->bounds[2 * k + 1] || l->bounds[2 * k + 1] > sizes_n)
            return FJ_DECLINE;
    }
    return FJ_OK;
}

int fj_pace_plan(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                 const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                 int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts, uint32_t *planned,
                 uint32_t *planned_counts, uint32_t *created, size_t created_cap, size_t *info)
{
    struct lanes l = { sizes, bounds, order, n, n_lanes, slots, unknown, created, created_cap, info };
    if (check_table(t, &l) != FJ_OK || created_cap < 3 * n || max_count < 0 || max_count > MAX_COUNT
        || max_bytes < 0 || max_bytes > MAX_TALLY || check_lanes(&l, sizes_n) != FJ_OK)
        return FJ_DECLINE;
    memset(counts, 0, n * sizeof *counts);
    info[0] = info[1] = info[2] = 0;
    int ready = 0;
    for (size_t i = 0; i < n && !ready; i++) {  /* any lane ready (ShardPace.wait) */
        int64_t slot = pace_of(t, &l, i, now);
        if (slot < 0)
            return FJ_PACE_FULL;
        ready = fj_pace_wait(t, (size_t)slot, sizes + bounds[2 * order[i]],
                             bounds[2 * order[i] + 1] - bounds[2 * order[i]]) <= 0;
    }
    int rc = ready ? request_plan(t, &l, now, max_count, max_bytes, counts, planned) : 0;
    for (int j = 0; j < rc; j++) {  /* the request's parts as (lane, count), in the plan's order */
        planned_counts[j] = counts[planned[j]];
        planned[j] = order[planned[j]];
    }
    return rc;
}

int fj_pace_waits(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                  const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                  int64_t unknown, double *waits, uint32_t *created, size_t created_cap, size_t *info)
{
    struct lanes l = { sizes, bounds, order, n, n_lanes, slots, unknown, created, created_cap, info };
    if (check_table(t, &l) != FJ_OK || check_lanes(&l, sizes_n) != FJ_OK)
        return FJ_DECLINE;
    info[0] = info[1] = info[2] = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t slot = pace_of(t, &l, i, now);
        if (slot < 0)
            return FJ_PACE_FULL;
        waits[i] = fj_pace_wait(t, (size_t)slot, sizes + bounds[2 * order[i]],
                                bounds[2 * order[i] + 1] - bounds[2 * order[i]]);
    }
    return (int)n;  /* n <= INT32_MAX: check_table */
}

int fj_pace_answered(struct fj_pace_table *t, double now, const uint32_t *lanes, size_t n, size_t n_lanes,
                     int32_t *slots, int64_t unknown, const uint32_t *acked, const uint64_t *acked_bytes,
                     const uint32_t *throttled, uint32_t *created, size_t created_cap, size_t *info)
{
    struct lanes l = { NULL, NULL, lanes, n, lanes ? n_lanes : n, slots, unknown, created, created_cap, info };
    if (check_table(t, &l) != FJ_OK)
        return FJ_DECLINE;
    for (size_t i = 0; i < n; i++)
        if ((lanes && lanes[i] >= n_lanes) || acked_bytes[i] > (uint64_t)MAX_VALUE)
            return FJ_DECLINE;
    info[0] = info[1] = info[2] = 0;
    int cuts = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t slot = pace_of(t, &l, i, now);
        if (slot < 0)
            return FJ_PACE_FULL;
        cuts += fj_pace_answer(t, (size_t)slot, acked[i], (int64_t)acked_bytes[i], throttled[i], now);
    }
    return cuts;
}

int fj_pace_take(struct fj_pace_table *t, double now, const uint32_t *entries, const uint32_t *sizes,
                 size_t sizes_n, uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                 int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts, uint32_t *planned,
                 uint32_t *planned_counts, uint32_t *created, size_t created_cap, size_t *info, uint32_t *group,
                 size_t group_cap, uint64_t *taken, uint32_t *emptied, size_t *took, uint8_t *seen)
{
    if (max_count < 0 || (uint64_t)max_count > group_cap)  /* before the plan takes any token */
        return FJ_DECLINE;
    memset(seen, 0, n_lanes);
    for (size_t i = 0; i < n; i++)  /* a lane twice would be taken twice: the plan does not look */
        if (order[i] >= n_lanes || seen[order[i]]++)
            return FJ_DECLINE;
    int rc = fj_pace_plan(t, now, sizes, sizes_n, bounds, n_lanes, order, n, slots, unknown, max_count, max_bytes,
                          counts, planned, planned_counts, created, created_cap, info);
    took[0] = took[1] = 0;
    if (rc <= 0)
        return rc;
    for (int j = 0; j < rc; j++)
        took[0] += planned_counts[j];  /* at most max_count: the plan's own bound */
    /* the plan's lanes are within bounds and distinct, their counts within what they hold: taking cannot decline */
    if (took[0] > group_cap || fj_take_lanes(entries, sizes, sizes_n, bounds, n_lanes, planned, planned_counts,
                                             (size_t)rc, group, taken, emptied, &took[1]) != FJ_OK)
        return FJ_PACE_FULL;
    return rc;
}

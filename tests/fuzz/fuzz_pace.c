/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on pacing's
 * per-request kernels (csrc/fastjson_pace_plan.c: fj_pace_take, fj_pace_plan,
 * fj_pace_answered) and on fj_take_lanes (csrc/fastjson_indices.c), as
 * delivery/pace_lanes.py and delivery/batching.py call them: a flush's lanes
 * (entries and their sizes in lane order, bounds, the lanes left), every
 * shard's state in a table's rows, a request's limits.
 * An input is: a header of 8 bytes (lanes, live slots, max_shards, max_count,
 * max_bytes, the clock, flags), then per lane 2 bytes (its length, how much
 * of it is taken already, its slot), then the bytes the sizes, the table's
 * cells and the answer's counts are drawn from in turn.
 * Every array is a copy of exactly its size (ASan sees a read past its end).
 * Checks: a decline changes nothing (table, bounds, slots); a take moves each
 * planned lane's bound by its count, gives exactly those entries in the
 * plan's order with their bytes summed, lists the lanes it emptied (and only
 * those), keeps within max_count; the plan's lanes are distinct lanes of the
 * request; an answer of the planned lanes is taken or declined whole. */
#include "../../csrc/fastjson.h"
#include "../../csrc/fastjson_pace.h"

#include <assert.h>
#include <stdlib.h>

#define MAX_LANES 48

static const uint8_t *in;
static size_t left;

static uint8_t byte(void)
{
    if (!left)
        return 0;
    left--;
    return *in++;
}

static uint32_t u32(void) { return (uint32_t)byte() | (uint32_t)byte() << 8 | (uint32_t)byte() << 16; }

static void *copy(const void *src, size_t n)
{
    void *p = malloc(n ? n : 1);
    memcpy(p, src, n);
    return p;
}

static double cell(void)  /* a bucket, a share, a time: mostly ordinary, sometimes far out */
{
    switch (byte() % 8) {
    case 0: return 0.0;
    case 1: return -1.0 * byte();
    case 2: return 1e17;
    case 3: return (double)u32() / 7.0;
    default: return (double)byte() * 4.0;
    }
}

static void table_constants(struct fj_pace_table *t)
{
    t->limit_records = 1000.0; t->limit_bytes = 1048576.0; t->ceiling = 0.98; t->burst = 0.8;
    t->min_share = 0.02; t->unknown_ceiling = 1000.0; t->cooldown = 1.0; t->window = 1.0; t->keep = 0.98;
    t->min_cut = 0.2; t->max_cut = 0.5; t->probe_base = 0.02; t->probe_quiet = 0.01; t->batch = 0.5;
    t->exact = 4503599627370496.0; t->min_records = 20.0; t->min_bytes = 20971.52; t->min_part = 32;
}

/* a flush's lanes as pace_lanes.py hands them over, before the call (the kernel gets copies) */
struct flush {
    size_t n_lanes, n, total;
    uint32_t bounds[2 * MAX_LANES], order[MAX_LANES];
    int32_t slots[MAX_LANES];
    uint32_t *sizes, *entries;
};

/* what one take gave */
struct took {
    int rc;
    uint32_t *bounds, *planned, *planned_counts, *group, *emptied, *created;
    int32_t *slots;
    uint64_t *taken;
    size_t took[2], info[3];
};

static void read_lanes(struct flush *f, size_t live, uint8_t flags)
{
    f->total = f->n = 0;
    for (size_t k = 0; k < f->n_lanes; k++) {
        uint8_t length = byte() % 24, done = byte(), slot = byte();
        f->bounds[2 * k] = (uint32_t)(f->total + (done % 4 == 0 ? done / 4 % (length + 1) : 0));
        f->bounds[2 * k + 1] = (uint32_t)(f->total + length);
        f->total += length;
        f->slots[k] = live && slot % 3 ? (int32_t)(slot % live) : -1;
        if (f->bounds[2 * k] < f->bounds[2 * k + 1] && (flags & 1 || byte() % 4))
            f->order[f->n++] = (uint32_t)k;
    }
    for (size_t k = 0; k < f->n_lanes && (flags & 2); k++)  /* the kernel's slots are distinct, or -1 */
        for (size_t j = 0; j < k; j++)
            if (f->slots[j] == f->slots[k])
                f->slots[k] = -1;
    if (flags & 4 && f->n)  /* a lane twice: declined */
        f->order[f->n - 1] = f->order[0];
    f->sizes = malloc(4 * (f->total ? f->total : 1));
    f->entries = malloc(4 * (f->total ? f->total : 1));
    for (size_t i = 0; i < f->total; i++) {
        uint8_t b = byte();
        f->sizes[i] = b % 4 == 0 ? u32() : b % 4 == 1 ? 250 : (uint32_t)b * 17;
        f->entries[i] = (uint32_t)i * 3 + 1;
    }
}

static void read_table(struct fj_pace_table *t, size_t live, size_t max_shards, size_t n_lanes)
{
    memset(t, 0, sizeof *t);
    table_constants(t);
    t->capacity = live + n_lanes;
    t->live = live;
    t->max_shards = max_shards;
    t->d_n = t->capacity * FJ_PACE_D;
    t->q_n = t->capacity * FJ_PACE_Q;
    t->d = malloc(8 * t->d_n);
    t->q = malloc(8 * t->q_n);
    for (size_t i = 0; i < t->d_n; i++)
        t->d[i] = cell();
    for (size_t i = 0; i < t->q_n; i++)
        t->q[i] = i % FJ_PACE_Q < FJ_PQ_SECOND_RECORDS ? byte() % 2 : (int64_t)byte() * 100;
}

/* a take: exactly the planned lanes' heads, in the plan's order, their bounds moved past them */
static void check_take(const struct flush *f, const struct took *r, int64_t max_count, size_t live)
{
    assert(r->rc >= 0 && (size_t)r->rc <= f->n && r->took[0] <= (size_t)max_count && r->took[1] <= (size_t)r->rc);
    size_t at = 0, empty = 0;
    for (int j = 0; j < r->rc; j++) {
        uint32_t k = r->planned[j];
        int in_order = 0;
        for (size_t i = 0; i < f->n; i++)
            in_order |= f->order[i] == k;
        for (int i = 0; i < j; i++)
            assert(r->planned[i] != k);
        assert(in_order && r->planned_counts[j] > 0 && r->bounds[2 * k] == f->bounds[2 * k] + r->planned_counts[j]);
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < r->planned_counts[j]; i++) {
            assert(r->group[at + i] == f->entries[f->bounds[2 * k] + i]);
            bytes += f->sizes[f->bounds[2 * k] + i];
        }
        assert(r->taken[j] == bytes);
        at += r->planned_counts[j];
        empty += r->bounds[2 * k] == r->bounds[2 * k + 1];
    }
    assert(at == r->took[0] && empty == r->took[1]);
    for (size_t e = 0; e < r->took[1]; e++)
        assert(r->bounds[2 * r->emptied[e]] == r->bounds[2 * r->emptied[e] + 1]);
    for (size_t k = 0; k < f->n_lanes; k++) {
        int moved = 0;
        for (int j = 0; j < r->rc; j++)
            moved |= r->planned[j] == k;
        assert(moved || r->bounds[2 * k] == f->bounds[2 * k]);
        assert(r->slots[k] >= -1 && r->slots[k] < (int32_t)(live + f->n_lanes));
    }
    for (size_t c = 0; c < r->info[0]; c++)
        assert(r->created[c] < f->n_lanes);
}

/* the answer to what was planned: some acknowledged, some throttled; taken or declined whole */
static void check_answer(const struct flush *f, struct took *r, struct fj_pace_table *t, double now,
                         int64_t unknown, uint8_t flags)
{
    size_t n = (size_t)r->rc;
    uint32_t *acked = malloc(4 * n), *throttled = malloc(4 * n);
    uint64_t *acked_bytes = malloc(8 * n);
    for (size_t j = 0; j < n; j++) {
        uint32_t back = byte() % (r->planned_counts[j] + 1);
        acked[j] = r->planned_counts[j] - back;
        throttled[j] = flags & 32 ? back : 0;
        acked_bytes[j] = byte() % 5 == 0 ? u32() * (uint64_t)u32() * 4096 : r->taken[j];
    }
    int32_t *s1 = copy(r->slots, 4 * f->n_lanes);
    double *d1 = copy(t->d, 8 * t->d_n);
    int64_t *q1 = copy(t->q, 8 * t->q_n);
    int cut = fj_pace_answered(t, now + 0.1, r->planned, n, f->n_lanes, r->slots, unknown, acked, acked_bytes,
                               throttled, r->created, 3 * f->n, r->info);
    assert(cut != FJ_PACE_FULL && (cut == FJ_DECLINE || (cut >= 0 && (size_t)cut <= n)));
    if (cut == FJ_DECLINE)
        assert(!memcmp(r->slots, s1, 4 * f->n_lanes) && !memcmp(t->d, d1, 8 * t->d_n) && !memcmp(t->q, q1, 8 * t->q_n));
    free(acked); free(throttled); free(acked_bytes); free(s1); free(d1); free(q1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in = data;
    left = size;
    struct flush f;
    f.n_lanes = 1 + byte() % MAX_LANES;
    size_t live = byte() % 64, max_shards = 1 + byte() % 96;
    int64_t max_count = byte() % 3 ? 500 : (int64_t)(byte() % 8) * 80;
    int64_t max_bytes = byte() % 2 ? 5 * 1048576 : (int64_t)u32();
    double now = 1000.0 + (double)(byte() % 16) * 0.25;
    uint8_t flags = byte();
    if (live > max_shards)
        live = max_shards;
    read_lanes(&f, live, flags);
    struct fj_pace_table t;
    read_table(&t, live, max_shards, f.n_lanes);
    int64_t unknown = flags & 8 ? (int64_t)(f.n_lanes - 1) : -1;

    size_t group_cap = flags & 16 ? (size_t)(max_count / 2) : (size_t)max_count, room = f.n ? f.n : 1;
    struct took r = { 0 };
    r.bounds = copy(f.bounds, 8 * f.n_lanes);
    r.slots = copy(f.slots, 4 * f.n_lanes);
    uint32_t *order = copy(f.order, 4 * f.n), *counts = malloc(4 * room);
    uint8_t *seen = malloc(f.n_lanes);
    double *d0 = copy(t.d, 8 * t.d_n);
    int64_t *q0 = copy(t.q, 8 * t.q_n);
    r.planned = malloc(4 * room), r.planned_counts = malloc(4 * room), r.created = malloc(4 * 3 * room);
    r.group = malloc(4 * (group_cap ? group_cap : 1)), r.emptied = malloc(4 * room), r.taken = malloc(8 * room);
    r.rc = fj_pace_take(&t, now, f.entries, f.sizes, f.total, r.bounds, f.n_lanes, order, f.n, r.slots, unknown,
                        max_count, max_bytes, counts, r.planned, r.planned_counts, r.created, 3 * f.n, r.info,
                        r.group, group_cap, r.taken, r.emptied, r.took, seen);
    assert(r.rc != FJ_PACE_FULL);
    if (r.rc == FJ_DECLINE) {  /* nothing changed */
        assert(!memcmp(r.bounds, f.bounds, 8 * f.n_lanes) && !memcmp(r.slots, f.slots, 4 * f.n_lanes));
        assert(!memcmp(t.d, d0, 8 * t.d_n) && !memcmp(t.q, q0, 8 * t.q_n));
    } else {
        check_take(&f, &r, max_count, live);
        if (r.rc > 0)
            check_answer(&f, &r, &t, now, unknown, flags);
    }
    free(r.bounds); free(r.slots); free(order); free(counts); free(seen); free(d0); free(q0); free(r.planned);
    free(r.planned_counts); free(r.created); free(r.group); free(r.emptied); free(r.taken); free(f.sizes);
    free(f.entries); free(t.d); free(t.q);
    return 0;
}

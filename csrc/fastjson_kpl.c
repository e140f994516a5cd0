/* fastjson_kpl.c: KPL aggregation's per-record part (issue 18): the
 * entries pipeline/aggregation.py's Aggregator.pack makes in Python, in one
 * pass over a chunk's records, in order. Python keeps what is per key (the
 * shard map, each key's shard and hash key, the keyless keys) and gives a
 * key table; here are the cost accounting (_Builder.cost, limit, skip), the
 * open aggregate per shard, and the records sent alone (over skip, too big,
 * a gap in the map, an aggregate of one): the plan, with every aggregate's
 * exact size by the same sums as Python's. fastjson_kpl_write.c then writes
 * the bytes, once the output is known to have room. */
#include "fastjson_kpl.h"

#include <stdlib.h>

/* order: the place of the one it follows (0: a new place, after all open ones) */
static void open_builder(struct kpl *k, struct kpl_builder *b, uint32_t key, uint64_t order)
{
    b->size = KPL_OVERHEAD + 2 + k->in->hash_lens[key];  /* and the hash key table */
    b->order = order ? order : ++k->order;
    b->serial = ++k->serial;
    b->head = b->tail = KPL_NONE;
    b->count = b->n_keys = 0;
    b->key_head = b->key_tail = KPL_NONE;
    b->first_key = key;
}

/* The bytes this record adds to b's Kinesis record (_Builder.cost). */
static uint64_t cost(const struct kpl *k, const struct kpl_builder *b, uint32_t key, uint64_t n)
{
    int known = k->key_serial[key] == b->serial;
    uint64_t index = known ? k->key_local[key] : b->n_keys;
    uint64_t inner = kpl_record_inner(index, n);
    uint64_t total = 1 + kpl_varint_size(inner) + inner;
    if (!known) {
        uint64_t raw = k->in->key_lens[key];
        total += 1 + kpl_varint_size(raw) + raw;
    }
    return total;
}

static void add(struct kpl *k, struct kpl_builder *b, uint32_t rec, uint32_t key, uint64_t added)
{
    if (k->key_serial[key] != b->serial) {
        k->key_serial[key] = b->serial;
        k->key_local[key] = b->n_keys++;
        k->key_next[key] = KPL_NONE;
        if (b->key_tail == KPL_NONE)
            b->key_head = key;
        else
            k->key_next[b->key_tail] = key;
        b->key_tail = key;
    }
    k->rec_local[rec] = k->key_local[key];
    k->rec_next[rec] = KPL_NONE;
    if (b->tail == KPL_NONE)
        b->head = rec;
    else
        k->rec_next[b->tail] = rec;
    b->tail = rec;
    b->count++;
    b->size += added;
}

static void alone(struct kpl *k, uint32_t rec, uint32_t key)
{
    struct kpl_entry *e = &k->plan[k->n_plan++];
    *e = (struct kpl_entry){ rec, 1, key, 0, 0, 0 };
}

/* An open aggregate into the plan (_Builder.finish): one record goes alone. */
static void finish(struct kpl *k, struct kpl_builder *b)
{
    b->order = 0;
    if (b->count == 1) {
        alone(k, b->head, k->rec_key[b->head]);
        return;
    }
    struct kpl_entry *e = &k->plan[k->n_plan++];
    *e = (struct kpl_entry){ (uint32_t)k->n_positions, b->count, b->first_key,
                              (uint32_t)k->n_key_order, b->n_keys, b->size - 1 };
    for (uint32_t rec = b->head; rec != KPL_NONE; rec = k->rec_next[rec])
        k->positions[k->n_positions++] = rec;
    for (uint32_t key = b->key_head; key != KPL_NONE; key = k->key_next[key])
        k->key_order[k->n_key_order++] = key;
}

/* One record, as the loop of Aggregator.pack. */
static void plan_record(struct kpl *k, uint32_t rec, uint32_t key)
{
    const struct fj_kpl_input *in = k->in;
    int32_t shard = in->key_shards[key];
    uint64_t n = in->data_lens[rec];
    k->rec_key[rec] = key;
    if (shard < 0) {  /* a gap in the map */
        alone(k, rec, key);
        return;
    }
    struct kpl_builder *b = &k->builders[shard];
    if (n > in->skip) {
        if (b->order)  /* keep this key's records in order */
            finish(k, b);
        alone(k, rec, key);
        return;
    }
    if (!b->order)
        open_builder(k, b, key, 0);
    uint64_t added = cost(k, b, key, n);
    if (b->size + added > in->limit && b->count) {
        uint64_t order = b->order;
        finish(k, b);
        open_builder(k, b, key, order);  /* in the place of the one finished, as a dict's key */
        added = cost(k, b, key, n);
    }
    if (b->size + added > in->limit) {  /* too big to aggregate at all */
        alone(k, rec, key);
        b->order = 0;
        return;
    }
    add(k, b, rec, key, added);
}

static int by_order(const void *x, const void *y)
{
    uint64_t a = (*(struct kpl_builder *const *)x)->order, b = (*(struct kpl_builder *const *)y)->order;
    return a < b ? -1 : a > b;
}

/* The aggregates still open, finished in the order they were opened. */
static int finish_open(struct kpl *k)
{
    size_t count = 0;
    struct kpl_builder **open = malloc((k->in->n_shards ? k->in->n_shards : 1) * sizeof *open);
    if (open == NULL)
        return FJ_DECLINE;
    for (size_t s = 0; s < k->in->n_shards; s++)
        if (k->builders[s].order)
            open[count++] = &k->builders[s];
    qsort(open, count, sizeof *open, by_order);
    for (size_t i = 0; i < count; i++)
        finish(k, open[i]);
    free(open);
    return FJ_OK;
}

static int plan(struct kpl *k)
{
    const struct fj_kpl_input *in = k->in;
    size_t turn = in->turn;
    for (size_t rec = 0; rec < in->n; rec++) {
        uint32_t key;
        if (in->rec_keys == NULL || (in->keyless != NULL && in->keyless[rec])) {
            key = (uint32_t)(in->keyless_base + turn);  /* no key of its own: the shards in turn */
            turn = turn + 1 == in->n_keyless ? 0 : turn + 1;
        } else {
            key = in->rec_keys[rec];
        }
        plan_record(k, (uint32_t)rec, key);
    }
    return finish_open(k);
}

/* The scratch arrays, in one allocation: per record, per key, per shard. */
static void *scratch(struct kpl *k, const struct fj_kpl_input *in)
{
    size_t n = in->n, keys = in->n_keys;
    struct { void **at; size_t size; } parts[] = {
        { (void **)&k->rec_at, n * sizeof(size_t) }, { (void **)&k->rec_next, n * sizeof(uint32_t) },
        { (void **)&k->rec_local, n * sizeof(uint32_t) }, { (void **)&k->rec_key, n * sizeof(uint32_t) },
        { (void **)&k->key_order, n * sizeof(uint32_t) }, { (void **)&k->plan, n * sizeof(struct kpl_entry) },
        { (void **)&k->key_at, keys * sizeof(size_t) }, { (void **)&k->hash_at, keys * sizeof(size_t) },
        { (void **)&k->key_serial, keys * sizeof(uint32_t) }, { (void **)&k->key_local, keys * sizeof(uint32_t) },
        { (void **)&k->key_next, keys * sizeof(uint32_t) },
        { (void **)&k->builders, in->n_shards * sizeof(struct kpl_builder) },
    };
    size_t count = sizeof parts / sizeof parts[0], size = 0;
    for (size_t i = 0; i < count; i++)
        size += (parts[i].size + 15) & ~(size_t)15;
    uint8_t *block = calloc(1, size ? size : 1), *at = block;
    if (block == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        *parts[i].at = at;
        at += (parts[i].size + 15) & ~(size_t)15;
    }
    return block;
}

/* The scratch, the checks and the plan: k is ready to write (free *block
 * after, whatever the answer). data_at: the records' offsets in data (a
 * table's column), or NULL: they are one after the other. */
int fj_kpl_plan(struct kpl *k, const uint32_t *data_at, void **block)
{
    const struct fj_kpl_input *in = k->in;
    *block = NULL;
    /* ids must stay below KPL_NONE; n_shards bounded so the scratch's size cannot wrap */
    if (in->n >= KPL_NONE || in->n_keys >= KPL_NONE || in->n_shards >= KPL_NONE)
        return FJ_DECLINE;
    *block = scratch(k, in);
    if (*block == NULL)
        return FJ_DECLINE;
    TRY(fj_kpl_check(in, data_at, k->rec_at, k->key_at, k->hash_at));
    return plan(k);
}

int fj_kpl_pack(const struct fj_kpl_input *in, uint8_t *out, size_t out_cap, size_t *out_used,
                uint32_t *entries, size_t *n_entries, uint32_t *positions)
{
    struct kpl k = { .in = in, .positions = positions };
    void *block;
    *out_used = *n_entries = 0;
    int rc = fj_kpl_plan(&k, NULL, &block);
    if (rc == FJ_OK)
        rc = fj_kpl_write(&k, out, out_cap, out_used, entries);
    if (rc == FJ_OK)
        *n_entries = k.n_plan;
    free(block);
    return rc;
}

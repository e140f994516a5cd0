/* fuzz_kpl.c's second half: fj_kpl_pack_table (csrc/fastjson_kpl_table.c)
 * on the same case, its records at offsets of their own (last first, a gap
 * byte before each, a buffer of exactly their size), against fj_kpl_pack's
 * answer: the same entries in the same order, an aggregate's bytes the same
 * and its key "a" and hash key its first key's, a record alone its own bytes
 * and key, every entry's events (in_events[record]) where its row says,
 * sizes = data + key. FJ_NEED_ROOM with no room says exactly what each
 * buffer needs, and again one data byte short; a record's offset past the
 * buffer is FJ_DECLINE. Then fj_kpl_key_ids over the records' own keys: the
 * same bytes the same id, ids in first-use order. */

struct table_case {
    uint8_t *data;
    uint32_t at[MAX_RECORDS], events[MAX_RECORDS];
    size_t size;
};

static void scatter(const struct fj_kpl_input *in, const size_t *rec_at, struct table_case *t)
{
    t->size = 0;
    for (size_t i = 0; i < in->n; i++)
        t->size += 1 + in->data_lens[i];
    t->data = malloc(t->size ? t->size : 1);
    size_t at = 0;
    for (size_t i = in->n; i-- > 0;) {
        t->data[at++] = 0xee;
        t->at[i] = (uint32_t)at;
        if (in->data_lens[i])
            memcpy(t->data + at, in->data + rec_at[i], in->data_lens[i]);
        at += in->data_lens[i];
        t->events[i] = (uint32_t)(i * 7 + 3);
    }
}

static void table_room(struct fj_kpl_table_out *o, size_t n, size_t data_cap, size_t keys_cap, size_t hashes_cap)
{
    o->data = malloc(data_cap ? data_cap : 1), o->keys = malloc(keys_cap ? keys_cap : 1);
    o->hashes = malloc(hashes_cap ? hashes_cap : 1);
    o->data_cap = data_cap, o->keys_cap = keys_cap, o->hashes_cap = hashes_cap;
    uint32_t **columns[] = { &o->data_at, &o->data_len, &o->key_at, &o->key_len, &o->hash_at, &o->hash_len,
                             &o->sizes, &o->events };
    for (size_t c = 0; c < sizeof columns / sizeof columns[0]; c++)
        *columns[c] = malloc((n ? n : 1) * sizeof(uint32_t));
    o->rows = malloc((n ? n : 1) * FJ_KPL_ROW * sizeof(uint32_t));
}

static void table_free(struct fj_kpl_table_out *o)
{
    free(o->data), free(o->keys), free(o->hashes), free(o->data_at), free(o->data_len), free(o->key_at);
    free(o->key_len), free(o->hash_at), free(o->hash_len), free(o->sizes), free(o->events), free(o->rows);
}

/* entry r of the table's answer against row r of fj_kpl_pack's */
static void same_entry(const struct fj_kpl_input *in, const struct table_case *t, const size_t *key_at,
                       const size_t *hash_at, const struct fj_kpl_table_out *o, size_t r, const uint32_t *row,
                       const uint8_t *out, const uint32_t *positions)
{
    const uint32_t *mine = o->rows + FJ_KPL_ROW * r;
    assert(mine[0] == row[0] && mine[2] == row[2] && mine[3] == row[3] && mine[1] + (uint64_t)mine[2] <= in->n);
    assert(o->sizes[r] == o->data_len[r] + o->key_len[r]);
    const uint8_t *data = o->data + o->data_at[r], *key = o->keys + o->key_at[r];
    if (row[0]) {
        assert(o->data_len[r] == row[5] && memcmp(data, out + row[4], row[5]) == 0);
        assert(o->key_len[r] == 1 && key[0] == 'a' && o->hash_len[r] == in->hash_lens[row[3]]);
        assert(o->hash_len[r] == 0 || memcmp(o->hashes + o->hash_at[r], in->hash_bytes + hash_at[row[3]],
                                             o->hash_len[r]) == 0);
        for (uint32_t j = 0; j < row[2]; j++)
            assert(o->events[mine[1] + j] == t->events[positions[row[1] + j]]);
    } else {
        assert(o->data_len[r] == in->data_lens[row[1]] && o->hash_len[r] == FJ_NO_HASH_KEY);
        assert(o->data_len[r] == 0 || memcmp(data, t->data + t->at[row[1]], o->data_len[r]) == 0);
        assert(o->key_len[r] == in->key_lens[row[3]]);
        assert(o->key_len[r] == 0 || memcmp(key, in->key_bytes + key_at[row[3]], o->key_len[r]) == 0);
        assert(o->events[mine[1]] == t->events[row[1]]);
    }
}

static void check_key_ids(const struct fj_kpl_input *in, const size_t *key_at)
{
    size_t n = in->rec_keys ? in->n : 0, n_ids = 0, seen = 0;
    uint32_t *at = malloc((n ? n : 1) * sizeof(uint32_t)), *len = malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t *ids = malloc((n ? n : 1) * sizeof(uint32_t)), *firsts = malloc((n ? n : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        at[i] = (uint32_t)key_at[in->rec_keys[i]], len[i] = in->key_lens[in->rec_keys[i]];
    assert(fj_kpl_key_ids(in->key_bytes, in->key_bytes_size, at, len, in->keyless, n, ids, firsts, &n_ids) == 0);
    for (size_t i = 0; i < n; i++) {
        if (in->keyless[i])
            continue;
        assert(ids[i] <= seen && ids[i] < n_ids);
        seen += ids[i] == seen;
        uint32_t f = firsts[ids[i]];
        assert(f <= i && !in->keyless[f] && len[f] == len[i] && (len[i] == 0
               || memcmp(in->key_bytes + at[f], in->key_bytes + at[i], len[i]) == 0));
        for (size_t j = 0; j < f; j++)  /* nothing before its first use has its bytes */
            assert(in->keyless[j] || len[j] != len[i] || (len[i] && memcmp(in->key_bytes + at[j],
                                                                           in->key_bytes + at[i], len[i])));
    }
    assert(seen == n_ids);
    free(at), free(len), free(ids), free(firsts);
}

static void check_table(struct fj_kpl_input *in, const uint8_t *out, const uint32_t *rows, size_t n_rows,
                        const uint32_t *positions)
{
    size_t rec_at[MAX_RECORDS], key_at[MAX_KEYS + 256], hash_at[MAX_KEYS + 256], at = 0;
    for (size_t i = 0; i < in->n; at += in->data_lens[i++])
        rec_at[i] = at;
    at = 0;
    for (size_t k = 0; k < in->n_keys; at += in->key_lens[k++])
        key_at[k] = at;
    at = 0;
    for (size_t k = 0; k < in->n_keys; at += in->hash_lens[k++])
        hash_at[k] = at;
    struct table_case t;
    scatter(in, rec_at, &t);
    struct fj_kpl_input given = *in;
    given.data = t.data, given.data_size = t.size;
    struct fj_kpl_table_out o;
    table_room(&o, in->n, 0, 0, 0);
    int rc = fj_kpl_pack_table(&given, t.at, t.events, &o);
    size_t need[3] = { o.data_used, o.keys_used, o.hashes_used };
    assert(rc == (need[0] || need[1] ? FJ_NEED_ROOM : FJ_OK));
    table_free(&o);
    table_room(&o, in->n, need[0], need[1], need[2]);
    assert(fj_kpl_pack_table(&given, t.at, t.events, &o) == FJ_OK && o.n_entries == n_rows);
    for (size_t r = 0; r < n_rows; r++)
        same_entry(&given, &t, key_at, hash_at, &o, r, rows + r * FJ_KPL_ENTRY, out, positions);
    if (need[0]) {
        o.data_cap--;
        assert(fj_kpl_pack_table(&given, t.at, t.events, &o) == FJ_NEED_ROOM);
    }
    if (in->n) {
        t.at[0] = (uint32_t)t.size - in->data_lens[0] + 1;
        assert(fj_kpl_pack_table(&given, t.at, t.events, &o) == FJ_DECLINE);
    }
    table_free(&o);
    free(t.data);
    check_key_ids(in, key_at);
}

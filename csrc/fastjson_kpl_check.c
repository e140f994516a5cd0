/* fastjson_kpl_check.c: what Python gave fj_kpl_pack, checked before the
 * plan reads any of it: each length list adds up to its buffer exactly
 * (and gives each item's offset; records given at offsets, a table's
 * column: each one inside the buffer), every record's key id names a key, every
 * key's shard is one of n_shards or -1 (a gap), and records without a key
 * of their own have keyless keys to take. Anything else is
 * FJ_DECLINE: the Python reference does that chunk. */
#include "fastjson_kpl.h"

/* lens[0..count) add up to size exactly; each one's offset into at[] */
static int offsets(const uint32_t *lens, size_t count, size_t size, size_t *at)
{
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        if (lens[i] > size - used)
            return FJ_DECLINE;
        at[i] = used;
        used += lens[i];
    }
    return used == size ? FJ_OK : FJ_DECLINE;
}

/* given offsets (a table's column): each record inside the buffer, anywhere */
static int placed(const uint32_t *given, const uint32_t *lens, size_t count, size_t size, size_t *at)
{
    for (size_t i = 0; i < count; i++) {
        if (given[i] > size || lens[i] > size - given[i])
            return FJ_DECLINE;
        at[i] = given[i];
    }
    return FJ_OK;
}

/* whether some record has no key of its own */
static int any_keyless(const struct fj_kpl_input *in)
{
    if (in->n == 0)
        return 0;
    if (in->rec_keys == NULL)
        return 1;
    if (in->keyless != NULL)
        for (size_t i = 0; i < in->n; i++)
            if (in->keyless[i])
                return 1;
    return 0;
}

int fj_kpl_check(const struct fj_kpl_input *in, const uint32_t *data_at, size_t *rec_at, size_t *key_at,
                 size_t *hash_at)
{
    if (data_at != NULL)
        TRY(placed(data_at, in->data_lens, in->n, in->data_size, rec_at));
    else
        TRY(offsets(in->data_lens, in->n, in->data_size, rec_at));
    TRY(offsets(in->key_lens, in->n_keys, in->key_bytes_size, key_at));
    TRY(offsets(in->hash_lens, in->n_keys, in->hash_bytes_size, hash_at));
    for (size_t key = 0; key < in->n_keys; key++)
        if (in->key_shards[key] < -1 || (in->key_shards[key] >= 0 && (size_t)in->key_shards[key] >= in->n_shards))
            return FJ_DECLINE;
    if (in->rec_keys != NULL)
        for (size_t i = 0; i < in->n; i++)
            if ((in->keyless == NULL || !in->keyless[i]) && in->rec_keys[i] >= in->n_keys)
                return FJ_DECLINE;
    if (any_keyless(in) &&
        (in->turn >= in->n_keyless || in->keyless_base > in->n_keys || in->n_keyless > in->n_keys - in->keyless_base))
        return FJ_DECLINE;
    return FJ_OK;
}

/* fastjson_pace.c: the arithmetic of one shard's pacing, line for line
 * delivery/shard_pace.py's ShardPace (its constructor, refill, wait,
 * take_sum with _by_sums and _one_by_one, answered) and batching.py's
 * fitting_sum, on a slot of a fastjson_pace.h table; fastjson_pace_plan.c
 * runs them over a request. Python's min and max return the first argument
 * unless the second is strictly less or greater (ties, -0.0 and NaN alike):
 * py_min and py_max. The integers here stay below 2**53 (the callers check),
 * so they convert to doubles exactly, as Python compares an int with a
 * float exactly. */
#include "fastjson.h"
#include "fastjson_pace.h"

#include <math.h>

static double py_min(double a, double b) { return b < a ? b : a; }
static double py_max(double a, double b) { return b > a ? b : a; }

/* ShardPace(known, now) */
void fj_pace_init(const struct fj_pace_table *t, size_t s, int known, double now)
{
    double *d = t->d + s * FJ_PACE_D;
    int64_t *q = t->q + s * FJ_PACE_Q;
    memset(q, 0, FJ_PACE_Q * sizeof *q);
    q[FJ_PQ_PACED_RECORDS] = q[FJ_PQ_PACED_BYTES] = known;
    d[FJ_PD_LIMIT_RECORDS] = known ? t->limit_records : 0.0;
    d[FJ_PD_LIMIT_BYTES] = known ? t->limit_bytes : 0.0;
    d[FJ_PD_SHARE] = known ? t->ceiling : 1.0;
    d[FJ_PD_CEILING] = known ? t->ceiling : t->unknown_ceiling;
    d[FJ_PD_RECORDS] = d[FJ_PD_SHARE] * t->limit_records * t->burst;
    d[FJ_PD_BYTES] = d[FJ_PD_SHARE] * t->limit_bytes * t->burst;
    d[FJ_PD_STAMP] = now;
    d[FJ_PD_LAST_CUT] = now - 3600.0;
    d[FJ_PD_OFFERED] = d[FJ_PD_ACCEPTED] = 0.0;
    d[FJ_PD_ANSWERED_AT] = d[FJ_PD_SECOND_START] = now;
}

void fj_pace_refill(const struct fj_pace_table *t, size_t s, double now)
{
    double *d = t->d + s * FJ_PACE_D;
    double elapsed = now - d[FJ_PD_STAMP];
    if (elapsed <= 0)
        return;
    d[FJ_PD_STAMP] = now;
    double share = d[FJ_PD_SHARE];
    if (share != d[FJ_PD_CEILING]) {
        double quiet = now - d[FJ_PD_LAST_CUT];
        double headroom = 2.0 * py_max(0.0, 1.0 - share / d[FJ_PD_CEILING]);
        share = d[FJ_PD_SHARE] = py_min(d[FJ_PD_CEILING],
                                        share + elapsed * (t->probe_base + t->probe_quiet * quiet) * headroom);
    }
    if (t->q[s * FJ_PACE_Q + FJ_PQ_PACED_RECORDS]) {
        double records = share * d[FJ_PD_LIMIT_RECORDS], data = share * d[FJ_PD_LIMIT_BYTES];
        d[FJ_PD_RECORDS] = py_min(records * t->burst, d[FJ_PD_RECORDS] + elapsed * records);
        d[FJ_PD_BYTES] = py_min(data * t->burst, d[FJ_PD_BYTES] + elapsed * data);
    }
}

/* ShardPace.wait(sizes) */
double fj_pace_wait(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t len)
{
    const double *d = t->d + s * FJ_PACE_D;
    if (!t->q[s * FJ_PACE_Q + FJ_PQ_PACED_RECORDS])
        return 0.0;
    double records = d[FJ_PD_SHARE] * d[FJ_PD_LIMIT_RECORDS], data = d[FJ_PD_SHARE] * d[FJ_PD_LIMIT_BYTES];
    double most = py_max(1.0, records * t->batch);
    double batch = most < (double)len ? most : (double)len;
    double full = data * t->burst;
    double head = full < (double)sizes[0] ? full : (double)sizes[0];
    double wait = py_max((batch - d[FJ_PD_RECORDS]) / records, (head - d[FJ_PD_BYTES]) / data);
    return wait <= 0 ? wait : py_max(wait, 0.001);
}

/* batching.fitting_sum: how many of sizes[start..len) fit max_count and max_bytes (the first always) */
static int64_t fitting_sum(const uint32_t *sizes, size_t len, size_t start, int64_t max_count, int64_t max_bytes,
                           int64_t *sent)
{
    *sent = 0;
    if (max_count <= 0)
        return 0;
    int64_t m = (int64_t)(len - start) < max_count ? (int64_t)(len - start) : max_count, count = 0, run = 0;
    for (int64_t i = 0; i < m; i++) {
        run += sizes[start + (size_t)i];
        if (run > max_bytes)
            break;
        count = i + 1;
        *sent = run;
    }
    if (!count && m) {
        count = 1;
        *sent = sizes[start];
    }
    return count;
}

/* ShardPace._one_by_one: a bucket beyond EXACT (or NaN), entry by entry */
static int64_t one_by_one(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t len,
                          size_t start, int64_t max_count, int64_t max_bytes, int64_t *sent_out)
{
    double *d = t->d + s * FJ_PACE_D;
    double full = d[FJ_PD_SHARE] * d[FJ_PD_LIMIT_BYTES] * t->burst;
    double records = d[FJ_PD_RECORDS], tokens = d[FJ_PD_BYTES];
    int64_t count = 0, sent = 0;
    for (size_t i = start; i < len; i++) {
        int64_t size = sizes[i];
        if (count >= max_count || (count && sent + size > max_bytes))
            break;
        if (records < 1.0 || (tokens < (double)size && tokens < full)) {
            t->q[s * FJ_PACE_Q + FJ_PQ_MINUTE + 3] += 1;
            break;
        }
        records -= 1.0;
        tokens -= (double)size;
        count += 1;
        sent += size;
    }
    d[FJ_PD_RECORDS] = records;
    d[FJ_PD_BYTES] = tokens;
    *sent_out = sent;
    return count;
}

/* ShardPace._by_sums: where a bucket runs short; the first `fit` entries fit the request */
static int64_t by_sums(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t start, int64_t fit,
                       int64_t *sent)
{
    double *d = t->d + s * FJ_PACE_D;
    double records = d[FJ_PD_RECORDS], tokens = d[FJ_PD_BYTES];
    int64_t floor_records = records >= 1.0 ? (int64_t)floor(records) : 0;
    int64_t allowed = fit < floor_records ? fit : floor_records, count = 0, taken = 0;
    while (count < allowed && (double)(taken + sizes[start + (size_t)count]) <= tokens)
        taken += sizes[start + (size_t)count++];  /* bisect_right over the running sums */
    if (count < allowed && tokens - (double)taken >= d[FJ_PD_SHARE] * d[FJ_PD_LIMIT_BYTES] * t->burst) {
        int64_t last = sizes[start + (size_t)count];  /* larger than what is left: it goes, the last */
        count += 1;
        d[FJ_PD_RECORDS] = records - (double)count;
        d[FJ_PD_BYTES] = (tokens - (double)taken) - (double)last;
        taken += last;
    } else if (count) {
        d[FJ_PD_RECORDS] = records - (double)count;
        d[FJ_PD_BYTES] = tokens - (double)taken;
    }
    if (count < fit)
        t->q[s * FJ_PACE_Q + FJ_PQ_MINUTE + 3] += 1;
    *sent = taken;
    return count;
}

/* ShardPace.take_sum */
int64_t fj_pace_take_sum(const struct fj_pace_table *t, size_t s, const uint32_t *sizes, size_t len, size_t start,
                        int64_t max_count, int64_t max_bytes, int64_t *sent)
{
    double *d = t->d + s * FJ_PACE_D;
    if (!t->q[s * FJ_PACE_Q + FJ_PQ_PACED_RECORDS])
        return fitting_sum(sizes, len, start, max_count, max_bytes, sent);
    double records = d[FJ_PD_RECORDS], tokens = d[FJ_PD_BYTES];
    if (!(fabs(records) < t->exact && fabs(tokens) < t->exact))
        return one_by_one(t, s, sizes, len, start, max_count, max_bytes, sent);
    int64_t allowed = records >= 1.0 ? (int64_t)floor(records) : 0;
    int64_t count = fitting_sum(sizes, len, start, max_count < allowed + 1 ? max_count : allowed + 1, max_bytes, sent);
    if ((double)count <= records && (double)*sent <= tokens) {
        d[FJ_PD_RECORDS] = records - (double)count;
        d[FJ_PD_BYTES] = tokens - (double)*sent;
        return count;
    }
    return by_sums(t, s, sizes, start, count, sent);
}

/* ShardPace.answered's cut, where the shard took less than TOLERATED less than we offered */
static void pace_cut(const struct fj_pace_table *t, size_t s)
{
    double *d = t->d + s * FJ_PACE_D;
    int64_t *q = t->q + s * FJ_PACE_Q;
    if (!q[FJ_PQ_PACED_RECORDS]) {  /* first throttle of an unknown shard: what it took is its rate */
        /* max(last_second, (this second's records, bytes)): the tuples' order, the first on a tie */
        int later = q[FJ_PQ_SECOND_RECORDS] > q[FJ_PQ_LAST_RECORDS]
                    || (q[FJ_PQ_SECOND_RECORDS] == q[FJ_PQ_LAST_RECORDS]
                        && q[FJ_PQ_SECOND_BYTES] > q[FJ_PQ_LAST_BYTES]);
        d[FJ_PD_LIMIT_RECORDS] = py_max(t->min_records, (double)q[later ? FJ_PQ_SECOND_RECORDS : FJ_PQ_LAST_RECORDS]);
        d[FJ_PD_LIMIT_BYTES] = py_max(t->min_bytes, (double)q[later ? FJ_PQ_SECOND_BYTES : FJ_PQ_LAST_BYTES]);
        q[FJ_PQ_PACED_RECORDS] = q[FJ_PQ_PACED_BYTES] = 1;
        d[FJ_PD_SHARE] = 1.0;
    } else {
        double kept = py_min(t->max_cut, py_max(t->min_cut, d[FJ_PD_ACCEPTED] / py_max(1.0, d[FJ_PD_OFFERED])));
        d[FJ_PD_SHARE] = py_max(t->min_share, d[FJ_PD_SHARE] * kept);
    }
    d[FJ_PD_RECORDS] = py_min(d[FJ_PD_RECORDS], 0.0);
    d[FJ_PD_BYTES] = py_min(d[FJ_PD_BYTES], 0.0);
}

/* ShardPace.answered; 1 when it cut the share */
int fj_pace_answer(const struct fj_pace_table *t, size_t s, int64_t acked, int64_t acked_bytes,
                         int64_t throttled, double now)
{
    double *d = t->d + s * FJ_PACE_D;
    int64_t *q = t->q + s * FJ_PACE_Q;
    if (now - d[FJ_PD_SECOND_START] >= 1.0) {
        q[FJ_PQ_LAST_RECORDS] = q[FJ_PQ_SECOND_RECORDS];
        q[FJ_PQ_LAST_BYTES] = q[FJ_PQ_SECOND_BYTES];
        d[FJ_PD_SECOND_START] = now;
        q[FJ_PQ_SECOND_RECORDS] = q[FJ_PQ_SECOND_BYTES] = 0;
    }
    q[FJ_PQ_SECOND_RECORDS] += acked;
    q[FJ_PQ_SECOND_BYTES] += acked_bytes;
    q[FJ_PQ_MINUTE] += acked;
    q[FJ_PQ_MINUTE + 1] += acked_bytes;
    q[FJ_PQ_MINUTE + 2] += throttled;
    double fade = exp(py_min(0.0, d[FJ_PD_ANSWERED_AT] - now) / t->window);
    d[FJ_PD_ANSWERED_AT] = now;
    d[FJ_PD_OFFERED] = d[FJ_PD_OFFERED] * fade + (double)acked + (double)throttled;
    d[FJ_PD_ACCEPTED] = d[FJ_PD_ACCEPTED] * fade + (double)acked;
    if (!throttled || now - d[FJ_PD_LAST_CUT] < t->cooldown || d[FJ_PD_ACCEPTED] >= d[FJ_PD_OFFERED] * t->keep)
        return 0;
    pace_cut(t, s);
    d[FJ_PD_LAST_CUT] = now;
    d[FJ_PD_OFFERED] = d[FJ_PD_ACCEPTED] = 0.0;
    return 1;
}

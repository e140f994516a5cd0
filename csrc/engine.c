/*
 * fluentbit-kinesis: what the shim needs from the Fluent Bit it runs in,
 * beyond the bare ABI. Compiled right after shim.c (fluentbit_kinesis/build.py),
 * so it sees struct fbk_instance.
 *
 *  - which thread runs a flush: with the output's default `workers 0`, Fluent
 *    Bit flushes on its engine thread, the thread that also called Init;
 *  - SIGPIPE blocked in every thread we start (a peer that hangs up must give
 *    EPIPE, not end Fluent Bit); threads Python starts inherit the mask;
 *  - Fluent Bit's own metrics (cmetrics, v2.0+): the instance's context, its
 *    name label, and counters/gauges created and set through symbols the
 *    binary exports, looked up at run time (never linked).
 */
#include <signal.h>
#include <stdint.h>
#include <time.h>

/* ---- threads ------------------------------------------------------------- */

static void fbk_thread_setup(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int fbk_on_engine_thread(struct fbk_instance *ins)
{
    return ins->has_init_thread && pthread_equal(pthread_self(), ins->init_thread);
}

/* Live instances, to recognize a context that already holds one of ours
 * without ever following a pointer we did not hand out. */
static struct fbk_instance *known_instances;

static void fbk_remember_instance(struct fbk_instance *ins)
{
    pthread_mutex_lock(&instance_lock);
    ins->next_known = known_instances;
    known_instances = ins;
    pthread_mutex_unlock(&instance_lock);
}

static void fbk_forget_instance(struct fbk_instance *ins)
{
    pthread_mutex_lock(&instance_lock);
    for (struct fbk_instance **at = &known_instances; *at; at = &(*at)->next_known) {
        if (*at == ins) {
            *at = ins->next_known;
            break;
        }
    }
    pthread_mutex_unlock(&instance_lock);
}

static struct fbk_instance *fbk_known_instance(void *pointer)
{
    struct fbk_instance *found = NULL;
    pthread_mutex_lock(&instance_lock);
    for (struct fbk_instance *ins = known_instances; ins; ins = ins->next_known) {
        if ((void *)ins == pointer) {
            found = ins;
            break;
        }
    }
    pthread_mutex_unlock(&instance_lock);
    return found;
}

/* ---- Fluent Bit's metrics (cmetrics) --------------------------------------- */

struct fbk_cmt_api {
    void *(*counter_create)(void *, char *, char *, char *, char *, int, char **);
    int (*counter_set)(void *, uint64_t, double, int, char **);
    void *(*gauge_create)(void *, char *, char *, char *, char *, int, char **);
    int (*gauge_set)(void *, uint64_t, double, int, char **);
    char *(*encode_prometheus)(void *, int);
    void (*encode_prometheus_destroy)(char *);
};

static struct fbk_cmt_api cmt_api;
static pthread_once_t cmt_api_once = PTHREAD_ONCE_INIT;
static int cmt_api_found;

static void fbk_cmt_resolve(void)
{
    cmt_api.counter_create = dlsym(RTLD_DEFAULT, "cmt_counter_create");
    cmt_api.counter_set = dlsym(RTLD_DEFAULT, "cmt_counter_set");
    cmt_api.gauge_create = dlsym(RTLD_DEFAULT, "cmt_gauge_create");
    cmt_api.gauge_set = dlsym(RTLD_DEFAULT, "cmt_gauge_set");
    cmt_api.encode_prometheus = dlsym(RTLD_DEFAULT, "cmt_encode_prometheus_create");
    cmt_api.encode_prometheus_destroy = dlsym(RTLD_DEFAULT, "cmt_encode_prometheus_destroy");
    cmt_api_found = cmt_api.counter_create && cmt_api.counter_set && cmt_api.gauge_create &&
                    cmt_api.gauge_set;
}

/* Whether api->output_get_cmt_instance may be read. Fluent Bit 1.9's flb_api
 * has one field (reading the third is reading past its end), so decide from
 * a fact: the process exports flb_output_get_cmt_instance (2.0+, which puts
 * exactly that function in the field), and the field holds it. */
static int fbk_api_has_cmt(struct fbk_instance *ins)
{
    void *getter = dlsym(RTLD_DEFAULT, "flb_output_get_cmt_instance");
    return getter && ins->api_generation >= 2 && (void *)ins->api->output_get_cmt_instance == getter;
}

/* Fluent Bit's name for the instance (its alias, or "kinesis.N" with N counted
 * over all outputs), read from the name label of the instance's own metrics. */
static void fbk_cmt_read_name(struct fbk_instance *ins)
{
    static const char label[] = "fluentbit_output_proc_records_total{name=\"";
    char *text, *at;
    size_t n = 0;

    if (!cmt_api.encode_prometheus || !cmt_api.encode_prometheus_destroy) {
        return;
    }
    text = cmt_api.encode_prometheus(ins->cmt, 0);
    if (!text) {
        return;
    }
    at = strstr(text, label);
    if (at) {
        for (at += sizeof(label) - 1; *at && *at != '"' && n + 1 < sizeof(ins->name); at++) {
            char c = *at;
            if (c == '\\' && at[1]) {  /* the encoder escapes \ " and newlines */
                c = *++at == 'n' ? '\n' : *at;
            }
            ins->name[n++] = c;
        }
        ins->name[*at == '"' ? n : 0] = '\0';  /* cut short: rather no name than a wrong one */
    }
    cmt_api.encode_prometheus_destroy(text);
}

/* Called on Init, on Fluent Bit's engine thread. */
static void fbk_engine_attach(struct fbk_instance *ins)
{
    ins->init_thread = pthread_self();
    ins->has_init_thread = 1;
    ins->cmt = NULL;
    ins->name[0] = '\0';
    if (!fbk_api_has_cmt(ins)) {
        return;
    }
    ins->cmt = ins->api->output_get_cmt_instance(ins->o_ins);
    if (!ins->cmt) {
        return;  /* a Fluent Bit built without metrics */
    }
    pthread_once(&cmt_api_once, fbk_cmt_resolve);
    if (!cmt_api_found) {
        ins->cmt = NULL;
        return;
    }
    fbk_cmt_read_name(ins);
}

/* ---- called from Python ---------------------------------------------------- */

const char *fbk_instance_name(void *handle)
{
    struct fbk_instance *ins = handle;
    return ins->name[0] ? ins->name : NULL;
}

int fbk_cmt_available(void *handle)
{
    struct fbk_instance *ins = handle;
    return ins->cmt != NULL && ins->name[0] != '\0';
}

/* A counter (gauge != 0: a gauge) fluentbit_kinesis_NAME with the label
 * `name`, plus `shard` when with_shard; NULL when it cannot be made. */
void *fbk_cmt_create(void *handle, const char *name, const char *help, int gauge, int with_shard)
{
    struct fbk_instance *ins = handle;
    char *labels[] = {"name", "shard"};
    if (!ins->cmt) {
        return NULL;
    }
    if (gauge) {
        return cmt_api.gauge_create(ins->cmt, "fluentbit", "kinesis", (char *)name, (char *)help,
                                    with_shard ? 2 : 1, labels);
    }
    return cmt_api.counter_create(ins->cmt, "fluentbit", "kinesis", (char *)name, (char *)help,
                                  with_shard ? 2 : 1, labels);
}

int fbk_cmt_set(void *handle, void *metric, int gauge, double value, const char *shard)
{
    struct fbk_instance *ins = handle;
    struct timespec now;
    char *values[] = {ins->name, (char *)shard};
    uint64_t ts;

    if (!metric) {
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    ts = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (gauge) {
        return cmt_api.gauge_set(metric, ts, value, shard ? 2 : 1, values);
    }
    return cmt_api.counter_set(metric, ts, value, shard ? 2 : 1, values);
}

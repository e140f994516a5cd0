/*
 * fluentbit-kinesis: what the shim reads from the Fluent Bit it runs in,
 * beyond the bare ABI: which generation of struct flb_api it passed (1.9's
 * has one field), the callbacks Python calls for properties and log levels,
 * and Fluent Bit's own metrics (cmetrics, v2.0+): the instance's context, its
 * name label, and counters/gauges created and set through symbols the binary
 * exports, looked up at run time (never linked).
 */
#include "fbk.h"

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---- called from Python ------------------------------------------------ */

const char *fbk_get_property(void *handle, const char *key)
{
    struct fbk_instance *ins = handle;
    return ins->api->output_get_property(key, ins->o_ins);
}

/* 1 or 0; -1 when this Fluent Bit cannot tell (1.9 has no output_log_check). */
int fbk_log_check(void *handle, int level)
{
    struct fbk_instance *ins = handle;
    return ins->log_check ? ins->log_check(ins->o_ins, level) : -1;
}

int fbk_api_generation(void *handle)
{
    return ((struct fbk_instance *)handle)->api_generation;
}

/* ---- which Fluent Bit is running ---------------------------------------- */

/* Fluent Bit 1.9 allocates a one-field struct flb_api (output_get_property
 * only, 8 bytes); 2.0 added input_get_property .. output_log_check, and with
 * them the exported function flb_output_log_check. The binary exports its
 * symbols (ENABLE_EXPORTS), so that symbol's presence tells a 2.0+ struct
 * apart from a 1.9 one before any later field is read; the field must then
 * hold that very function, or the struct is not what we think and is not read
 * further. Without the symbol only the first field is ever used, and lines go
 * through the exported flb_log_print (1.9 has it) or, failing that, to stderr
 * in Fluent Bit's format. */
void fbk_detect_api(struct fbk_instance *ins)
{
    void *exported_log_check = dlsym(RTLD_DEFAULT, "flb_output_log_check");
    void *exported_log_print = dlsym(RTLD_DEFAULT, "flb_log_print");

    ins->api_generation = 1;
    ins->log_check = NULL;
    ins->log_print = (fbk_log_print_fn)exported_log_print;
    if (exported_log_check && (void *)ins->api->output_log_check == exported_log_check) {
        ins->api_generation = 2;
        ins->log_check = (fbk_log_check_fn)ins->api->output_log_check;
        ins->log_print = ins->api->log_print;
    }
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

/* On Init, on Fluent Bit's engine thread (from fbk_engine_attach): the
 * instance's cmetrics context and name, when this Fluent Bit has them. */
void fbk_cmt_attach(struct fbk_instance *ins)
{
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

/*
 * fluentbit-kinesis: the one header the shim's C files share. The shim is the
 * C side of Fluent Bit's external ("Go proxy") output plugin ABI. It knows
 * nothing about Kinesis: it keeps one small context per [OUTPUT] section and
 * hands every call to Python on a thread with a normal stack, because Fluent
 * Bit runs flushes on coroutine stacks of 24 KiB.
 *
 * fluentbit_kinesis/tools/build.py compiles these files into one shared object with
 * cffi's embedding glue; the fbk_py_* functions are implemented in Python
 * (fluentbit_kinesis/plugin.py) and start the interpreter on first use.
 *
 *   abi.c      the FLBPlugin* entry points, Init's struct, the instance registry
 *   flbapi.c   which Fluent Bit runs (its API generation), properties, log
 *              levels and its metrics (cmetrics): the callbacks Python calls
 *   log.c      the log bridge: Python's lines queued and printed on Fluent Bit
 *              threads (or the printer thread), stderr when there is no logger
 *   python.c   libpython made global, the standard library check, Python start-up
 *   call.c     each call to Python on its own thread with a big stack (fbk_run)
 *   engine.c   engine-thread detection and the setup of every thread we start
 *
 * Every file includes this header first (before any system header).
 */
#ifndef FBK_H
#define FBK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stddef.h>

/* Fluent Bit's return codes */
#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2

/* shared between the shim's files, never exported from the plugin */
#define FBK_INTERNAL __attribute__((visibility("hidden")))

/* struct flb_api: the fields in Fluent Bit's order. Fluent Bit 1.9 has the
 * first one only (see fbk_detect_api); later fields are never read here. */
struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
};

typedef void (*fbk_log_print_fn)(int, const char *, int, const char *, ...);
typedef int (*fbk_log_check_fn)(void *, int);

/* One per [OUTPUT] section; Fluent Bit hands it back to FlushCtx/ExitCtx. */
struct fbk_instance {
    int id;
    struct flb_api *api;
    void *o_ins;
    /* set by fbk_engine_attach (engine.c, flbapi.c) */
    pthread_t init_thread;      /* Fluent Bit's engine thread: it calls Init */
    int has_init_thread;
    void *cmt;                  /* the instance's cmetrics context (2.0+), or NULL */
    char name[128];             /* Fluent Bit's name for it (alias or kinesis.N), or "" */
    struct fbk_instance *next_known;
    fbk_log_print_fn log_print;   /* NULL: Fluent Bit's line format on stderr */
    fbk_log_check_fn log_check;   /* NULL: the level is not known (1.9) */
    int api_generation;           /* 1: only output_get_property; 2: v2.0+ fields */
};

/* ---- a call to Python (call.c) --------------------------------------------- */

/* CALL_TAKE: a flush on the engine thread, which must not wait on Kinesis */
enum fbk_call_kind { CALL_INIT, CALL_FLUSH, CALL_TAKE, CALL_EXIT };

struct fbk_call {
    enum fbk_call_kind kind;
    struct fbk_instance *ins;
    const void *data;
    size_t size;
    const char *tag;
    int rc;
    int done; /* under the log queue's lock: the Python side has returned */
};

/* Runs the call on a fresh thread with a big stack, printing log lines on the
 * calling (Fluent Bit) thread while it waits; returns the call's rc. */
FBK_INTERNAL int fbk_run(struct fbk_call *call);

/* ---- implemented in Python (fluentbit_kinesis/plugin.py) through cffi ------
 * build.py's EMBEDDING_API declares the same functions to cffi. */
int fbk_py_init(void *handle, int id);
int fbk_py_flush(int id, const void *data, size_t size, const char *tag);
int fbk_py_exit(int id);
int fbk_py_take(int id, const void *data, size_t size, const char *tag);

/* ---- called from Python: build.py's CALLBACKS declares them to cffi -------- */
const char *fbk_get_property(void *handle, const char *key);          /* flbapi.c */
int fbk_log_check(void *handle, int level);                           /* flbapi.c */
void fbk_log(void *handle, int level, const char *message);           /* log.c */
const char *fbk_instance_name(void *handle);                          /* flbapi.c */
int fbk_cmt_available(void *handle);                                  /* flbapi.c */
void *fbk_cmt_create(void *handle, const char *name, const char *help, int gauge, int with_shard);
int fbk_cmt_set(void *handle, void *metric, int gauge, double value, const char *shard);
int fbk_api_generation(void *handle);                                 /* flbapi.c */

/* ---- flbapi.c: which Fluent Bit runs ---------------------------------------- */
FBK_INTERNAL void fbk_detect_api(struct fbk_instance *ins);
FBK_INTERNAL void fbk_cmt_attach(struct fbk_instance *ins);

/* ---- log.c: the log bridge ------------------------------------------------- */
FBK_INTERNAL void fbk_wait_printing_log(int *done);
FBK_INTERNAL void fbk_log_call_done(int *done);
FBK_INTERNAL void fbk_printer_instance_started(void);
FBK_INTERNAL void fbk_printer_instance_exited(void);

/* ---- python.c: the embedded interpreter ------------------------------------ */
FBK_INTERNAL void fbk_promote_libpython(void);
FBK_INTERNAL int fbk_start_python(struct fbk_instance *ins);

/* ---- engine.c: threads ----------------------------------------------------- */
FBK_INTERNAL void fbk_thread_setup(void);
FBK_INTERNAL int fbk_on_engine_thread(struct fbk_instance *ins);
FBK_INTERNAL void fbk_engine_attach(struct fbk_instance *ins);

#endif

/*
 * fluentbit-kinesis: the C side of Fluent Bit's external ("Go proxy") output
 * plugin ABI. It knows nothing about Kinesis: it keeps one small context per
 * [OUTPUT] section and hands every call to Python on a thread with a normal
 * stack, because Fluent Bit runs flushes on coroutine stacks of 24 KiB.
 *
 * This file is compiled by cffi (fluentbit_kinesis/build.py) together with the
 * embedding glue; the fbk_py_* functions are implemented in Python
 * (fluentbit_kinesis/plugin.py) and start the interpreter on first use.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11
#define FBK_EXPORT __attribute__((visibility("default")))

/* Only the leading fields we use; v5 appends fields we never touch. */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
};

struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

/* What Fluent Bit passes to Init: one pointer shared by all instances. */
struct flbgo_output_plugin {
    char *name;
    struct flb_api *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
};

/* One per [OUTPUT] section; Fluent Bit hands it back to FlushCtx/ExitCtx. */
struct fbk_instance {
    int id;
    struct flb_api *api;
    void *o_ins;
    /* set by fbk_engine_attach (csrc/engine.c) */
    pthread_t init_thread;      /* Fluent Bit's engine thread: it calls Init */
    int has_init_thread;
    void *cmt;                  /* the instance's cmetrics context (2.0+), or NULL */
    char name[128];             /* Fluent Bit's name for it (alias or kinesis.N), or "" */
    struct fbk_instance *next_known;
};

/* Implemented in Python (fluentbit_kinesis/plugin.py) through cffi. */
int fbk_py_init(void *handle, int id);
int fbk_py_flush(int id, const void *data, size_t size, const char *tag);
int fbk_py_exit(int id);
int fbk_py_take(int id, const void *data, size_t size, const char *tag);

/* csrc/engine.c */
static void fbk_thread_setup(void);
static int fbk_on_engine_thread(struct fbk_instance *ins);
static void fbk_engine_attach(struct fbk_instance *ins);
static void fbk_remember_instance(struct fbk_instance *ins);
static void fbk_forget_instance(struct fbk_instance *ins);
static struct fbk_instance *fbk_known_instance(void *pointer);

static int next_instance_id;
static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- called from Python ------------------------------------------------ */

const char *fbk_get_property(void *handle, const char *key)
{
    struct fbk_instance *ins = handle;
    return ins->api->output_get_property(key, ins->o_ins);
}

int fbk_log_check(void *handle, int level)
{
    struct fbk_instance *ins = handle;
    return ins->api->output_log_check(ins->o_ins, level);
}

void fbk_log(void *handle, int level, const char *message)
{
    struct fbk_instance *ins = handle;
    ins->api->log_print(level, "kinesis", 0, "%s", message);
}

/* ---- running Python on a real stack ------------------------------------ */

/* CALL_TAKE: a flush on the engine thread, which must not wait on Kinesis */
enum fbk_call_kind { CALL_INIT, CALL_FLUSH, CALL_TAKE, CALL_EXIT };

struct fbk_call {
    enum fbk_call_kind kind;
    struct fbk_instance *ins;
    const void *data;
    size_t size;
    const char *tag;
    int rc;
};

static void *fbk_call_main(void *arg)
{
    struct fbk_call *call = arg;
    fbk_thread_setup();
    switch (call->kind) {
    case CALL_INIT:
        call->rc = fbk_py_init(call->ins, call->ins->id);
        break;
    case CALL_FLUSH:
        call->rc = fbk_py_flush(call->ins->id, call->data, call->size, call->tag);
        break;
    case CALL_TAKE:
        call->rc = fbk_py_take(call->ins->id, call->data, call->size, call->tag);
        break;
    case CALL_EXIT:
        call->rc = fbk_py_exit(call->ins->id);
        break;
    }
    return NULL;
}

/* Runs the call on a fresh thread with an 8 MiB stack and waits for it, so
 * CPython never touches the caller's (possibly tiny coroutine) stack. */
static int fbk_run(struct fbk_call *call)
{
    pthread_attr_t attr;
    pthread_t thread;
    int err;

    call->rc = FLB_ERROR;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
    err = pthread_create(&thread, &attr, fbk_call_main, call);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        fprintf(stderr, "[kinesis] cannot start a thread for Python: %s\n", strerror(err));
        return call->kind == CALL_FLUSH ? FLB_RETRY : FLB_ERROR;
    }
    pthread_join(thread, NULL);
    return call->rc;
}

/* Fluent Bit loads us with RTLD_LOCAL, which hides libpython's symbols from
 * the C extension modules Python imports later (_json, msgpack, ...).
 * Re-opening libpython with RTLD_GLOBAL makes them visible. */
static void fbk_promote_libpython(void)
{
    Dl_info info;
    if (dladdr((void *)&Py_IsInitialized, &info) && info.dli_fname) {
        if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
            fprintf(stderr, "[kinesis] cannot re-open %s globally: %s\n", info.dli_fname, dlerror());
        }
    }
}

/* Python locates its standard library from the interpreter's path. Embedded,
 * it would search PATH for "python3" and may find another Python than the one
 * this plugin links (or none, under a service's minimal PATH): name the
 * interpreter the plugin was built with (its venv's python) instead. */
static void fbk_set_program_name(void)
{
#ifdef FBK_PYTHON_EXECUTABLE
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    static wchar_t *name;
    if (!name && !Py_IsInitialized()) {
        name = Py_DecodeLocale(FBK_PYTHON_EXECUTABLE, NULL);
        if (name) {
            Py_SetProgramName(name);
        }
    }
#pragma GCC diagnostic pop
#endif
}

/* Init called again for a context that still holds a live instance of ours
 * (a host that re-inits an output): stop that instance first, so it is not
 * left running with nobody to flush or exit it. */
static void fbk_stop_previous(struct flb_plugin_proxy_context *context)
{
    struct fbk_instance *old = context ? fbk_known_instance(context->remote_context) : NULL;
    struct fbk_call call = {0};
    if (!old) {
        return;
    }
    fbk_log(old, 2, "Init called again for this output: the instance it replaces is stopped first");
    fbk_forget_instance(old);
    context->remote_context = NULL;
    call.kind = CALL_EXIT;
    call.ins = old;
    fbk_run(&call);
}

/* ---- the ABI ----------------------------------------------------------- */

FBK_EXPORT int FLBPluginRegister(struct flb_plugin_proxy_def *def)
{
    def->type = FLB_PROXY_OUTPUT_PLUGIN;
    def->proxy = FLB_PROXY_GOLANG;
    def->flags = 0;
    def->name = "kinesis";
    def->description = "Amazon Kinesis Data Streams (fluentbit-kinesis)";
    fbk_promote_libpython();
    fbk_set_program_name();
    return 0;
}

FBK_EXPORT int FLBPluginInit(void *plugin)
{
    struct flbgo_output_plugin *p = plugin;
    struct fbk_instance *ins = calloc(1, sizeof(*ins));
    struct fbk_call call = {0};
    int rc;

    if (!ins) {
        return FLB_ERROR;
    }
    fbk_stop_previous(p->context);
    /* copy out now: Fluent Bit overwrites this struct for the next instance */
    ins->api = p->api;
    ins->o_ins = p->o_ins;
    pthread_mutex_lock(&instance_lock);
    ins->id = next_instance_id++;
    pthread_mutex_unlock(&instance_lock);

    fbk_engine_attach(ins);

    call.kind = CALL_INIT;
    call.ins = ins;
    rc = fbk_run(&call);
    if (rc != FLB_OK) {
        free(ins);
        return FLB_ERROR;
    }
    fbk_remember_instance(ins);
    p->context->remote_context = ins;
    return FLB_OK;
}

FBK_EXPORT int FLBPluginFlushCtx(void *ctx, const void *data, size_t size, char *tag)
{
    struct fbk_call call = {0};
    if (!ctx) {
        return FLB_ERROR;
    }
    call.kind = fbk_on_engine_thread(ctx) ? CALL_TAKE : CALL_FLUSH;
    call.ins = ctx;
    call.data = data;
    call.size = size;
    call.tag = tag;
    return fbk_run(&call);
}

FBK_EXPORT int FLBPluginExitCtx(void *ctx)
{
    struct fbk_call call = {0};
    if (!ctx) {
        return FLB_OK;
    }
    call.kind = CALL_EXIT;
    call.ins = ctx;
    fbk_forget_instance(ctx);
    int rc = fbk_run(&call);
    /* ctx is not freed: a late log line from Python must never touch freed
     * memory, and it is a few bytes once per instance at shutdown. */
    return rc;
}

FBK_EXPORT void FLBPluginUnregister(void *def)
{
    (void)def;
}

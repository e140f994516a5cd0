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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

typedef void (*fbk_log_print_fn)(int, const char *, int, const char *, ...);
typedef int (*fbk_log_check_fn)(void *, int);

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
    fbk_log_print_fn log_print;   /* NULL: Fluent Bit's line format on stderr */
    fbk_log_check_fn log_check;   /* NULL: the level is not known (1.9) */
    int api_generation;           /* 1: only output_get_property; 2: v2.0+ fields */
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
void fbk_log(void *handle, int level, const char *message);
static int fbk_start_python(struct fbk_instance *ins);

static int next_instance_id;
static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;

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
static void fbk_detect_api(struct fbk_instance *ins)
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

/* Fluent Bit 1.9's own line format: "[2026/12/02 01:50:14] [ warn] ...". */
static void fbk_stderr_line(int level, const char *text)
{
    static const char *names[] = {"", "error", "warn", "info", "debug", "trace"};
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y/%m/%d %H:%M:%S", &tm);
    fprintf(stderr, "[%s] [%5s] %s\n", stamp, (level >= 1 && level <= 5) ? names[level] : "", text);
    fflush(stderr);
}

/* ---- log lines, printed by the Fluent Bit thread ---------------------------
 * flb_log_print puts a line in Fluent Bit's log (Log_File, logger metrics)
 * only on a thread that has Fluent Bit's worker context; Python runs on our
 * own threads, which have none. So Python's lines are queued here, in order,
 * and printed by a Fluent Bit thread: the one waiting in fbk_run for its call
 * (it wakes for each line), or, for a line from a background thread while no
 * call runs, the next call's thread. */

#define FBK_LOG_QUEUE_MAX 10000

struct fbk_line {
    struct fbk_line *next;
    struct fbk_instance *ins;
    int level;
    char text[];
};

static pthread_mutex_t log_queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_queue_cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t log_print_lock = PTHREAD_MUTEX_INITIALIZER; /* one printer: FIFO order */
static struct fbk_line *log_head, *log_tail;
static int log_queued;
static unsigned long log_dropped;

static void fbk_print_line(struct fbk_instance *ins, int level, const char *text)
{
    if (ins->log_print) {
        ins->log_print(level, "kinesis", 0, "%s", text);
    }
    else {
        fbk_stderr_line(level, text);
    }
}

void fbk_log(void *handle, int level, const char *message)
{
    size_t size = strlen(message) + 1;
    struct fbk_line *line = malloc(sizeof(*line) + size);

    pthread_mutex_lock(&log_queue_lock);
    if (!line || log_queued >= FBK_LOG_QUEUE_MAX) {
        log_dropped++;
        pthread_mutex_unlock(&log_queue_lock);
        free(line);
        return;
    }
    line->next = NULL;
    line->ins = handle;
    line->level = level;
    memcpy(line->text, message, size);
    if (log_tail) {
        log_tail->next = line;
    }
    else {
        log_head = line;
    }
    log_tail = line;
    log_queued++;
    pthread_cond_broadcast(&log_queue_cond);
    pthread_mutex_unlock(&log_queue_lock);
}

/* Prints every queued line on the calling (Fluent Bit) thread. */
static void fbk_drain_log(void)
{
    struct fbk_line *line, *next;
    unsigned long dropped;

    pthread_mutex_lock(&log_print_lock);
    pthread_mutex_lock(&log_queue_lock);
    line = log_head;
    log_head = log_tail = NULL;
    log_queued = 0;
    dropped = log_dropped;
    log_dropped = 0;
    pthread_mutex_unlock(&log_queue_lock);
    for (; line; line = next) {
        next = line->next;
        fbk_print_line(line->ins, line->level, line->text);
        if (dropped && !next) {
            char text[160];
            snprintf(text, sizeof(text), "[output:kinesis] %lu plugin log lines dropped: "
                     "more than %d were waiting to be printed", dropped, FBK_LOG_QUEUE_MAX);
            fbk_print_line(line->ins, 2, text);
        }
        free(line);
    }
    pthread_mutex_unlock(&log_print_lock);
}

/* Waits for `*done` (set under log_queue_lock, as fbk_log_call_done does),
 * printing lines as they come. */
static void fbk_wait_printing_log(int *done)
{
    pthread_mutex_lock(&log_queue_lock);
    while (!*done) {
        if (log_head) {
            pthread_mutex_unlock(&log_queue_lock);
            fbk_drain_log();
            pthread_mutex_lock(&log_queue_lock);
            continue;
        }
        pthread_cond_wait(&log_queue_cond, &log_queue_lock);
    }
    pthread_mutex_unlock(&log_queue_lock);
    fbk_drain_log();
}

static void fbk_log_call_done(int *done)
{
    pthread_mutex_lock(&log_queue_lock);
    *done = 1;
    pthread_cond_broadcast(&log_queue_cond);
    pthread_mutex_unlock(&log_queue_lock);
}

/* ---- a printer for lines logged while no call runs -------------------------
 * A background thread's line (metrics summaries, say) may come while no call
 * waits in fbk_run. This printer thread prints it at once, under the engine
 * thread's worker context: Fluent Bit keeps that context in the exported
 * thread-local pointer flb_worker_ctx, and flb_worker_get() reads it. The
 * printer adopts it only when every fact checks out at run time: the symbol
 * holds flb_worker_get()'s answer on the engine thread, it is per thread (its
 * address differs on the printer's thread, where it starts empty), and after
 * setting it flb_worker_get() answers the engine's context on the printer's
 * thread too. Otherwise the printer ends and lines wait for the next call.
 * The engine's context lives until Fluent Bit's logger is destroyed, after
 * every ExitCtx; the printer stops at the last ExitCtx. */

struct fbk_printer {
    pthread_t thread;
    int running;
    int stop;          /* under log_queue_lock */
    int instances;     /* initialized and not yet exited */
    void *worker;      /* the engine thread's worker context */
    void **engine_slot;
};

static struct fbk_printer printer;

static void *fbk_printer_main(void *arg)
{
    void *(*worker_get)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "flb_worker_get");
    void **slot = dlsym(RTLD_DEFAULT, "flb_worker_ctx");
    (void)arg;

    fbk_thread_setup();
    if (!worker_get || !slot || slot == printer.engine_slot || *slot != NULL) {
        return NULL;
    }
    *slot = printer.worker;
    if (worker_get() != printer.worker) {
        *slot = NULL;
        return NULL;
    }
    fbk_wait_printing_log(&printer.stop);
    *slot = NULL;
    return NULL;
}

/* On the engine thread, after an instance's Init succeeded. */
static void fbk_printer_instance_started(void)
{
    void *(*worker_get)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "flb_worker_get");
    void **slot = dlsym(RTLD_DEFAULT, "flb_worker_ctx");

    printer.instances++;
    if (printer.running || !worker_get || !slot) {
        return;
    }
    printer.worker = worker_get();
    printer.engine_slot = slot;
    if (!printer.worker || *slot != printer.worker) {
        return;
    }
    printer.stop = 0;
    printer.running = pthread_create(&printer.thread, NULL, fbk_printer_main, NULL) == 0;
}

/* On the engine thread, after an instance's Exit. */
static void fbk_printer_instance_exited(void)
{
    if (--printer.instances > 0 || !printer.running) {
        return;
    }
    pthread_mutex_lock(&log_queue_lock);
    printer.stop = 1;
    pthread_cond_broadcast(&log_queue_cond);
    pthread_mutex_unlock(&log_queue_lock);
    pthread_join(printer.thread, NULL);
    printer.running = 0;
    fbk_drain_log();
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
    int done; /* under log_queue_lock: the Python side has returned */
};

static void *fbk_call_main(void *arg)
{
    struct fbk_call *call = arg;
    fbk_thread_setup();
    switch (call->kind) {
    case CALL_INIT:
        if (fbk_start_python(call->ins)) {
            call->rc = fbk_py_init(call->ins, call->ins->id);
        }
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
    fbk_log_call_done(&call->done);
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
        return (call->kind == CALL_FLUSH || call->kind == CALL_TAKE) ? FLB_RETRY : FLB_ERROR;
    }
    fbk_wait_printing_log(&call->done); /* this thread has Fluent Bit's log context */
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

/* ---- starting Python ---------------------------------------------------
 * cffi starts Python with Py_InitializeEx, which ends the whole process
 * ("Fatal Python error") when the environment is broken (a wrong PYTHONHOME,
 * a moved base Python). Starting it here with the PyConfig API first gets a
 * status back instead, so Init fails with one line and Fluent Bit lives; cffi
 * then finds Python running and only imports the plugin.
 *
 * Python locates its standard library from the interpreter's path. Embedded,
 * it would search PATH for "python3" and may find another Python than the one
 * this plugin links (or none, under a service's minimal PATH): name the
 * interpreter the plugin was built with (its venv's python) instead. */
/* Python's own landmark for its standard library (os.py, or the zipped
 * stdlib), where this Python will look: PYTHONHOME's, or the one the plugin
 * was built against. Checked first because a failing Py_InitializeFromConfig
 * still prints its whole path configuration to stderr. */
static int fbk_stdlib_findable(char *where, size_t size)
{
    char path[4096];
    const char *home = getenv("PYTHONHOME");
    const char *version = "python" Py_STRINGIFY(PY_MAJOR_VERSION) "." Py_STRINGIFY(PY_MINOR_VERSION);
    const char *zipped = "python" Py_STRINGIFY(PY_MAJOR_VERSION) Py_STRINGIFY(PY_MINOR_VERSION) ".zip";

    if (home && *home) {
        snprintf(where, size, "%.*s/%s/%s", (int)strcspn(home, ":"), home, FBK_PYTHON_PLATLIBDIR, version);
    }
    else {
        snprintf(where, size, "%s", FBK_PYTHON_STDLIB);
    }
    snprintf(path, sizeof(path), "%s/os.py", where);
    if (access(path, R_OK) == 0) {
        return 1;
    }
    snprintf(path, sizeof(path), "%s/../%s", where, zipped);
    return access(path, R_OK) == 0;
}

static int fbk_start_python(struct fbk_instance *ins)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char failure[3072]; /* the first failure, repeated to every later Init */
    PyPreConfig preconfig;
    PyConfig config;
    PyStatus status;
    char where[2048];
    int ok;

    pthread_mutex_lock(&lock);
    if (!failure[0] && !Py_IsInitialized() && !fbk_stdlib_findable(where, sizeof(where))) {
        const char *home = getenv("PYTHONHOME");
        snprintf(failure, sizeof(failure),
                 "its standard library is not in %s (PYTHONHOME=%s); "
                 "unset PYTHONHOME or point it at the Python the plugin was built with", where, home ? home : "(unset)");
    }
    if (!failure[0] && !Py_IsInitialized()) {
        /* the process is Fluent Bit's: leave its locale environment, C stdio
         * (buffers included) and signals alone */
        PyPreConfig_InitPythonConfig(&preconfig);
        preconfig.coerce_c_locale = 0;
        preconfig.coerce_c_locale_warn = 0;
        status = Py_PreInitialize(&preconfig);
        PyConfig_InitPythonConfig(&config);
        config.configure_c_stdio = 0;
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
#ifdef FBK_PYTHON_EXECUTABLE
        if (!PyStatus_Exception(status)) {
            status = PyConfig_SetBytesString(&config, &config.program_name, FBK_PYTHON_EXECUTABLE);
        }
#endif
        if (!PyStatus_Exception(status)) {
            status = Py_InitializeFromConfig(&config);
        }
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            const char *home = getenv("PYTHONHOME");
            snprintf(failure, sizeof(failure),
                     "%s%s%s (PYTHONHOME=%s); the plugin needs the Python it was built with%s%s",
                     status.func ? status.func : "", status.func ? ": " : "",
                     status.err_msg ? status.err_msg : "unknown error", home ? home : "(unset)",
#ifdef FBK_PYTHON_EXECUTABLE
                     ": ", FBK_PYTHON_EXECUTABLE
#else
                     "", ""
#endif
                     );
        }
        else {
            PyEval_SaveThread(); /* release the GIL: cffi takes it per call */
        }
    }
    ok = !failure[0];
    pthread_mutex_unlock(&lock);
    if (!ok) {
        char line[3200];
        snprintf(line, sizeof(line), "[output:kinesis:kinesis.%d] cannot start Python: %s", ins->id, failure);
        fbk_log(ins, 1, line);
    }
    return ok;
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
    fbk_detect_api(ins);
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
    fbk_printer_instance_started();
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
    fbk_printer_instance_exited();
    /* ctx is not freed: a late log line from Python must never touch freed
     * memory, and it is a few bytes once per instance at shutdown. */
    return rc;
}

FBK_EXPORT void FLBPluginUnregister(void *def)
{
    (void)def;
}

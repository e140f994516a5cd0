/*
 * A stand-in for Fluent Bit's Go-proxy loader, for the tests: it loads a
 * plugin the way Fluent Bit does (dlopen RTLD_LAZY, no RTLD_GLOBAL), passes
 * one shared Init structure to every instance, and runs each flush on a
 * 24 KiB coroutine stack (ucontext), like Fluent Bit's flush coroutines.
 *
 * Commands on stdin, one per line; an answer per command on stdout:
 *   set N KEY VALUE          property KEY of instance N (log_level too)
 *   init N                   -> "init N RC"
 *   flush N TAG FILE         -> "flush RC"
 *   pflush N TAG FILE [N TAG FILE ...]   concurrent flushes -> "pflush RC RC ..."
 *   exit N                   -> "exit RC"
 *   stats                    -> "stats FLUSHES OVER MAX_MS CMT_CALLS": flushes run on the
 *                               engine thread, how many of them held it over the bound, the
 *                               longest; calls of output_get_cmt_instance
 *   logs                     -> "logs error=N warn=N info=N debug=N trace=N foreign=N adopted=N cut=N"
 *   unregister               -> "unregister"
 *   quit
 *
 * Logging as Fluent Bit does it: the host exports flb_log_print, the
 * thread-local worker context flb_worker_ctx and flb_worker_get() (and, as
 * 2.0+ does, flb_output_log_check) from its dynamic symbol table; the threads
 * it creates have a worker context. A line printed on a thread with a worker
 * context goes to FLB_HOST_LOG_FILE (Fluent Bit's Log_File) or stderr, in
 * Fluent Bit's format, and is counted (logger metrics), as "adopted" too when
 * the thread is not one the host created; a line from a thread without one
 * is what Fluent Bit would write to stderr, bypassing Log_File and the
 * counters: it is counted as "foreign" and marked "HOST-ERROR". So is a line
 * cut by Fluent Bit's 4 KiB message buffer.
 *
 * Built with -DIMITATE_FLB_1_9 it is Fluent Bit 1.9: struct flb_api holds only
 * output_get_property (8 bytes, followed here by an unreadable page, so any
 * read past it crashes), and flb_output_log_check does not exist.
 *
 * FLB_HOST_ENGINE_THREAD=1 runs flushes as Fluent Bit does with an output's
 * default `workers 0`: on the thread that called Init (the "engine"), one at
 * a time; FLB_HOST_BLOCK_BOUND_MS (default 1000) is the bound `stats` counts
 * against. The process exports flb_output_get_cmt_instance (as Fluent Bit
 * 2.0+ does) and hands it out in the api; it returns NULL (no cmetrics here).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <ucontext.h>

#define MAX_INSTANCES 16
#define MAX_PROPS 64
#define DEFAULT_STACK (24 * 1024)

struct proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *v5_extra; /* v5 appends a field: the plugin must not write it */
};

struct api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};

struct proxy_context {
    void *remote_context;
    void *proxy;
};

struct init_arg {
    char *name;
    struct api *api;
    void *o_ins;
    struct proxy_context *context;
};

struct instance {
    int log_level;
    int nprops;
    char *keys[MAX_PROPS];
    char *values[MAX_PROPS];
    struct proxy_context context;
};

static struct instance instances[MAX_INSTANCES];
static struct api *api;
static struct init_arg shared_init_arg; /* one for all instances, as in Fluent Bit */
static int (*plugin_init)(void *);
static int (*plugin_flush_ctx)(void *, const void *, size_t, char *);
static int (*plugin_exit_ctx)(void *);
static void (*plugin_unregister)(void *);
static size_t coroutine_stack = DEFAULT_STACK;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int engine_thread_flushes;
static long block_bound_ms = 1000;
static long engine_flushes, engine_over_bound, engine_max_ms, cmt_calls;

#ifndef IMITATE_FLB_1_9
/* Fluent Bit 2.0+ exports this and puts it in flb_api; no cmetrics context here */
void *flb_output_get_cmt_instance(void *o_ins)
{
    (void)o_ins;
    cmt_calls++;
    return NULL;
}
#endif
static __thread int host_thread; /* set on every thread the host creates */
static int host_worker;           /* what a worker context points to */
__thread void *flb_worker_ctx;    /* as Fluent Bit's FLB_TLS_DEFINE(struct flb_worker, flb_worker_ctx) */
static FILE *log_file;
static unsigned long lines_by_level[6], foreign_lines, adopted_lines, cut_lines;

void *flb_worker_get(void)
{
    return flb_worker_ctx;
}

static void host_thread_start(void)
{
    host_thread = 1;
    flb_worker_ctx = &host_worker;
}
#define FLB_LOG_MESSAGE_BYTES (4096 - sizeof(size_t)) /* struct log_message's buffer */

static const char *get_property(const char *key, void *o_ins)
{
    struct instance *ins = o_ins;
    for (int i = 0; i < ins->nprops; i++) {
        if (strcasecmp(ins->keys[i], key) == 0) {
            return ins->values[i];
        }
    }
    return NULL;
}

#ifndef IMITATE_FLB_1_9
int flb_output_log_check(void *o_ins, int level)
{
    return ((struct instance *)o_ins)->log_level >= level;
}
#endif

void flb_log_print(int level, const char *file, int line, const char *fmt, ...)
{
    static const char *names[] = {"", "error", "warn", "info", "debug", "trace"};
    char message[FLB_LOG_MESSAGE_BYTES];
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    va_list args;
    int header, body;
    (void)file;
    (void)line;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y/%m/%d %H:%M:%S", &tm);
    header = snprintf(message, sizeof(message), "[%s] [%5s] ", stamp,
                      (level >= 1 && level <= 5) ? names[level] : "");
    va_start(args, fmt);
    body = vsnprintf(message + header, sizeof(message) - 2 - header, fmt, args);
    va_end(args);
    pthread_mutex_lock(&log_lock);
    if (!flb_worker_ctx) {
        foreign_lines++;
        fprintf(stderr, "HOST-ERROR: log line from a thread without a worker context: %s\n", message);
    }
    else {
        adopted_lines += !host_thread;
        if (body >= (int)(sizeof(message) - 2 - header)) {
            cut_lines++;
            fprintf(stderr, "HOST-ERROR: log line cut at %zu bytes\n", sizeof(message));
        }
        lines_by_level[(level >= 1 && level <= 5) ? level : 0]++;
        fprintf(log_file ? log_file : stderr, "%s\n", message);
        fflush(log_file ? log_file : stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

/* ---- flush on a small coroutine stack ---------------------------------- */

struct flush_job {
    int instance;
    char tag[256];
    void *data;
    size_t size;
    int rc;
    ucontext_t caller;
    ucontext_t coroutine;
};

static void coroutine_main(unsigned int hi, unsigned int lo)
{
    struct flush_job *job = (struct flush_job *)(((unsigned long)hi << 32) | lo);
    job->rc = plugin_flush_ctx(instances[job->instance].context.remote_context,
                               job->data, job->size, job->tag);
}

static void *flush_thread(void *arg)
{
    struct flush_job *job = arg;
    void *stack = malloc(coroutine_stack);
    host_thread_start();
    unsigned long p = (unsigned long)job;

    getcontext(&job->coroutine);
    job->coroutine.uc_stack.ss_sp = stack;
    job->coroutine.uc_stack.ss_size = coroutine_stack;
    job->coroutine.uc_link = &job->caller;
    makecontext(&job->coroutine, (void (*)(void))coroutine_main, 2,
                (unsigned int)(p >> 32), (unsigned int)(p & 0xffffffffUL));
    swapcontext(&job->caller, &job->coroutine);
    free(stack);
    return NULL;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A flush on the engine (this, the main) thread, timed: all the time it takes,
 * the engine runs no input and no other output. */
static void flush_on_engine(struct flush_job *job)
{
    long start = now_ms(), took;
    flush_thread(job);
    took = now_ms() - start;
    engine_flushes++;
    engine_over_bound += took > block_bound_ms;
    engine_max_ms = took > engine_max_ms ? took : engine_max_ms;
}

static int load_file(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) {
        return -1;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? n : 1);
    *size = fread(*data, 1, n, f);
    fclose(f);
    return 0;
}

static int valid_instance(int n)
{
    return n >= 0 && n < MAX_INSTANCES;
}

/* ---- commands ------------------------------------------------------------ */

static void cmd_set(char *rest)
{
    int n = atoi(strtok(rest, " "));
    char *key = strtok(NULL, " ");
    char *value = strtok(NULL, "");
    struct instance *ins;
    if (!valid_instance(n) || !key) {
        printf("error bad set\n");
        return;
    }
    ins = &instances[n];
    if (!value) {
        value = "";
    }
    if (strcasecmp(key, "log_level") == 0) {
        const char *levels[] = {"off", "error", "warn", "info", "debug", "trace"};
        for (int i = 0; i < 6; i++) {
            if (strcasecmp(value, levels[i]) == 0) {
                ins->log_level = i;
            }
        }
    }
    else if (ins->nprops < MAX_PROPS) {
        ins->keys[ins->nprops] = strdup(key);
        ins->values[ins->nprops] = strdup(value);
        ins->nprops++;
    }
    printf("set\n");
}

static void cmd_init(char *rest)
{
    int n = atoi(rest);
    int rc;
    if (!valid_instance(n)) {
        printf("error bad instance\n");
        return;
    }
    /* Fluent Bit reuses and overwrites one structure for every instance */
    shared_init_arg.name = "kinesis";
    shared_init_arg.api = api;
    shared_init_arg.o_ins = &instances[n];
    shared_init_arg.context = &instances[n].context;
    rc = plugin_init(&shared_init_arg);
    memset(&shared_init_arg, 0xAB, sizeof(shared_init_arg)); /* stale pointers must not be used */
    printf("init %d %d\n", n, rc);
}

static void cmd_flush(char *rest, int concurrent)
{
    struct flush_job jobs[MAX_INSTANCES * 4];
    pthread_t threads[MAX_INSTANCES * 4];
    int count = 0;
    char *tok = strtok(rest, " ");
    while (tok && count < MAX_INSTANCES * 4) {
        struct flush_job *job = &jobs[count];
        char *tag = strtok(NULL, " ");
        char *path = strtok(NULL, " ");
        if (!tag || !path || !valid_instance(atoi(tok))) {
            printf("error bad flush\n");
            return;
        }
        memset(job, 0, sizeof(*job));
        job->instance = atoi(tok);
        snprintf(job->tag, sizeof(job->tag), "%s", tag);
        if (load_file(path, &job->data, &job->size) != 0) {
            printf("error cannot read %s\n", path);
            return;
        }
        count++;
        tok = strtok(NULL, " ");
    }
    for (int i = 0; i < count; i++) {
        if (engine_thread_flushes) {
            flush_on_engine(&jobs[i]);
            continue;
        }
        pthread_create(&threads[i], NULL, flush_thread, &jobs[i]);
        if (!concurrent) {
            pthread_join(threads[i], NULL);
        }
    }
    printf(concurrent ? "pflush" : "flush");
    for (int i = 0; i < count; i++) {
        if (concurrent && !engine_thread_flushes) {
            pthread_join(threads[i], NULL);
        }
        printf(" %d", jobs[i].rc);
        free(jobs[i].data);
    }
    printf("\n");
}

static void cmd_exit(char *rest)
{
    int n = atoi(rest);
    int rc = 0;
    if (!valid_instance(n)) {
        printf("error bad instance\n");
        return;
    }
    if (instances[n].context.remote_context) {
        rc = plugin_exit_ctx(instances[n].context.remote_context);
    }
    printf("exit %d\n", rc);
}

static struct api *make_api(void)
{
#ifdef IMITATE_FLB_1_9
    /* Fluent Bit 1.9: malloc(sizeof(struct flb_api)) of one field, 8 bytes;
     * here the bytes after it are an unreadable page */
    long page = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct api *one_field = (struct api *)(pages + page - sizeof(void *));
    mprotect(pages + page, page, PROT_NONE);
    one_field->output_get_property = get_property;
    return one_field;
#else
    static struct api full;
    full.output_get_property = get_property;
    full.log_print = flb_log_print;
    full.output_log_check = flb_output_log_check;
    full.output_get_cmt_instance = flb_output_get_cmt_instance;
    return &full;
#endif
}

int main(int argc, char **argv)
{
    char line[8192];
    struct proxy_def def;
    void *handle;
    int (*plugin_register)(struct proxy_def *);

    if (argc < 2) {
        fprintf(stderr, "usage: %s plugin.so\n", argv[0]);
        return 2;
    }
    host_thread_start();
    if (getenv("FLB_HOST_LOG_FILE")) {
        log_file = fopen(getenv("FLB_HOST_LOG_FILE"), "a");
    }
    if (getenv("FLB_HOST_STACK")) {
        coroutine_stack = strtoul(getenv("FLB_HOST_STACK"), NULL, 10);
    }
    if (getenv("FLB_HOST_ENGINE_THREAD")) {
        engine_thread_flushes = atoi(getenv("FLB_HOST_ENGINE_THREAD"));
    }
    if (getenv("FLB_HOST_BLOCK_BOUND_MS")) {
        block_bound_ms = atol(getenv("FLB_HOST_BLOCK_BOUND_MS"));
    }
    handle = dlopen(argv[1], RTLD_LAZY); /* as flb_plugin_proxy does: no RTLD_GLOBAL */
    if (!handle) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    plugin_register = dlsym(handle, "FLBPluginRegister");
    plugin_init = dlsym(handle, "FLBPluginInit");
    plugin_flush_ctx = dlsym(handle, "FLBPluginFlushCtx");
    plugin_exit_ctx = dlsym(handle, "FLBPluginExitCtx");
    plugin_unregister = dlsym(handle, "FLBPluginUnregister");
    if (!plugin_register || !plugin_init || !plugin_flush_ctx || !plugin_exit_ctx) {
        fprintf(stderr, "missing plugin symbols\n");
        return 1;
    }

    memset(&def, 0, sizeof(def));
    def.v5_extra = (void *)0x5a5a5a5a;
    plugin_register(&def);
    if (def.type != 2 || def.proxy != 11 || !def.name || def.v5_extra != (void *)0x5a5a5a5a) {
        fprintf(stderr, "bad registration: type=%d proxy=%d\n", def.type, def.proxy);
        return 1;
    }
    printf("registered %s\n", def.name);
    fflush(stdout);

    api = make_api();
    for (int i = 0; i < MAX_INSTANCES; i++) {
        instances[i].log_level = 3;
    }

    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "set ", 4) == 0) {
            cmd_set(line + 4);
        }
        else if (strncmp(line, "init ", 5) == 0) {
            cmd_init(line + 5);
        }
        else if (strncmp(line, "flush ", 6) == 0) {
            cmd_flush(line + 6, 0);
        }
        else if (strncmp(line, "pflush ", 7) == 0) {
            cmd_flush(line + 7, 1);
        }
        else if (strncmp(line, "exit ", 5) == 0) {
            cmd_exit(line + 5);
        }
        else if (strcmp(line, "stats") == 0) {
            printf("stats %ld %ld %ld %ld\n", engine_flushes, engine_over_bound, engine_max_ms, cmt_calls);
        }
        else if (strcmp(line, "logs") == 0) {
            pthread_mutex_lock(&log_lock);
            printf("logs error=%lu warn=%lu info=%lu debug=%lu trace=%lu foreign=%lu adopted=%lu cut=%lu\n",
                   lines_by_level[1], lines_by_level[2], lines_by_level[3], lines_by_level[4],
                   lines_by_level[5], foreign_lines, adopted_lines, cut_lines);
            pthread_mutex_unlock(&log_lock);
        }
        else if (strcmp(line, "unregister") == 0) {
            if (plugin_unregister) {
                plugin_unregister(&def);
            }
            printf("unregister\n");
        }
        else if (strcmp(line, "quit") == 0) {
            break;
        }
        else if (line[0]) {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    return 0;
}

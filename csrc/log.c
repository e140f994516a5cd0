/*
 * fluentbit-kinesis: the log bridge. Python's log lines are queued here and
 * printed on a Fluent Bit thread (the one waiting in fbk_run, or the printer
 * thread that adopts the engine's worker context), through Fluent Bit's
 * log_print, or to stderr in Fluent Bit's own line format when there is none.
 */
#include "fbk.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
void fbk_wait_printing_log(int *done)
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

void fbk_log_call_done(int *done)
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
void fbk_printer_instance_started(void)
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
void fbk_printer_instance_exited(void)
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

/*
 * fluentbit-kinesis: running Python on a real stack. Every call into Python
 * (Init, a flush, Exit) runs on a fresh thread with an 8 MiB stack while the
 * Fluent Bit thread that made it waits, printing the call's log lines: Fluent
 * Bit's flushes run on coroutine stacks of 24 KiB (64 KiB in v5), where
 * CPython would corrupt memory.
 */
#include "fbk.h"

#include <stdio.h>
#include <string.h>

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
int fbk_run(struct fbk_call *call)
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

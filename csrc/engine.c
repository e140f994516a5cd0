/*
 * fluentbit-kinesis: the threads the shim runs on.
 *
 *  - which thread runs a flush: with the output's default `workers 0`, Fluent
 *    Bit flushes on its engine thread, the thread that also called Init (a
 *    flush there must not wait on Kinesis: it becomes CALL_TAKE);
 *  - SIGPIPE blocked in every thread we start (a peer that hangs up must give
 *    EPIPE, not end Fluent Bit); threads Python starts inherit the mask.
 */
#include "fbk.h"

#include <signal.h>

void fbk_thread_setup(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int fbk_on_engine_thread(struct fbk_instance *ins)
{
    return ins->has_init_thread && pthread_equal(pthread_self(), ins->init_thread);
}

/* Called on Init, on Fluent Bit's engine thread: remembers that thread, then
 * finds the instance's metrics context and name (flbapi.c). */
void fbk_engine_attach(struct fbk_instance *ins)
{
    ins->init_thread = pthread_self();
    ins->has_init_thread = 1;
    fbk_cmt_attach(ins);
}

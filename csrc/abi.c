/*
 * fluentbit-kinesis: Fluent Bit's external ("Go proxy") output plugin ABI,
 * the FLBPlugin* functions Fluent Bit looks up by name. Owns the structs
 * Fluent Bit passes to Register and Init (Init's pointer is shared by every
 * instance and overwritten for the next one), the instance ids and the
 * registry of live instances.
 */
#include "fbk.h"

#include <stdlib.h>

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

static int next_instance_id;
static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- live instances ----------------------------------------------------------
 * To recognize a context that already holds one of ours without ever
 * following a pointer we did not hand out. */
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

/*
 * fluentbit-kinesis: the embedded interpreter. libpython re-opened with
 * RTLD_GLOBAL (Fluent Bit loads the plugin RTLD_LOCAL), the standard library
 * checked where Python will look for it, and Python started with the PyConfig
 * API so a broken environment fails Init with one line instead of ending
 * Fluent Bit. cffi's embedding glue then finds Python running.
 *
 * fluentbit_kinesis/tools/build.py defines FBK_PYTHON_STDLIB, FBK_PYTHON_PLATLIBDIR
 * and FBK_PYTHON_EXECUTABLE from the Python it builds against.
 */
#include <Python.h>  /* first, as Python asks */

#include "fbk.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if !defined(FBK_PYTHON_STDLIB) || !defined(FBK_PYTHON_PLATLIBDIR)
#error "FBK_PYTHON_STDLIB and FBK_PYTHON_PLATLIBDIR are defined by fluentbit_kinesis/tools/build.py"
#endif

/* Fluent Bit loads us with RTLD_LOCAL, which hides libpython's symbols from
 * the C extension modules Python imports later (_json, msgpack, ...).
 * Re-opening libpython with RTLD_GLOBAL makes them visible. */
void fbk_promote_libpython(void)
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

/* ---- Python's frame-stack chunks, kept ---------------------------------
 * CPython keeps a thread's frames in chunks of 16 KiB that it takes from its
 * arena allocator (mmap) when a call goes deeper than the chunk holds and
 * gives back (munmap) when that call returns. The delivery thread's requests
 * cross such a line a few times each: 2,500 mmap and munmap pairs, and the
 * page faults of fresh pages, in a 300,000-line run. This allocator keeps a
 * few freed blocks of up to 64 KiB for the next request of the same size
 * (their pages stay memory: at most 512 KiB) and passes everything else,
 * Python's 1 MiB arenas included, to Python's own. CPython calls it with the
 * GIL held; the lock costs nothing uncontended and keeps it safe regardless. */
#define FBK_KEPT_BLOCKS 8
#define FBK_KEPT_LARGEST (64 * 1024)

static PyObjectArenaAllocator fbk_python_arenas;
static struct { void *block; size_t size; } fbk_kept[FBK_KEPT_BLOCKS];
static int fbk_kept_count;
static pthread_mutex_t fbk_kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void *fbk_arena_alloc(void *ctx, size_t size)
{
    void *block = NULL;
    (void)ctx;
    if (size <= FBK_KEPT_LARGEST) {
        pthread_mutex_lock(&fbk_kept_lock);
        for (int i = fbk_kept_count - 1; i >= 0 && !block; i--) {
            if (fbk_kept[i].size == size) {
                block = fbk_kept[i].block;
                fbk_kept[i] = fbk_kept[--fbk_kept_count];
            }
        }
        pthread_mutex_unlock(&fbk_kept_lock);
    }
    return block ? block : fbk_python_arenas.alloc(fbk_python_arenas.ctx, size);
}

static void fbk_arena_free(void *ctx, void *block, size_t size)
{
    int kept = 0;
    (void)ctx;
    if (block && size <= FBK_KEPT_LARGEST) {
        pthread_mutex_lock(&fbk_kept_lock);
        if (fbk_kept_count < FBK_KEPT_BLOCKS) {
            fbk_kept[fbk_kept_count].block = block;
            fbk_kept[fbk_kept_count++].size = size;
            kept = 1;
        }
        pthread_mutex_unlock(&fbk_kept_lock);
    }
    if (!kept) {
        fbk_python_arenas.free(fbk_python_arenas.ctx, block, size);
    }
}

/* Between Py_PreInitialize and Py_InitializeFromConfig, as CPython asks of allocators. */
static void fbk_keep_frame_chunks(void)
{
    PyObjectArenaAllocator kept = { NULL, fbk_arena_alloc, fbk_arena_free };
    PyObject_GetArenaAllocator(&fbk_python_arenas);
    PyObject_SetArenaAllocator(&kept);
}

int fbk_start_python(struct fbk_instance *ins)
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
        if (!PyStatus_Exception(status)) {
            fbk_keep_frame_chunks();
        }
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

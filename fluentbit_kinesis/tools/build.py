"""Builds kinesis.so: the C shim (csrc/fbk.h and its files) plus cffi's
embedding of this Python; and fluentbit_kinesis._fastjson, the native fast
path (csrc/fastjson.h and its files), an ordinary extension module that both
the plugin and plain Python import. Each C file is compiled on its own.

The .so records where this interpreter finds `fluentbit_kinesis` and its
dependencies, so Fluent Bit can load it without PYTHONPATH. At run time
FLUENTBIT_KINESIS_PYTHONPATH (colon separated) is put in front of them.
"""
import json
import os
import shutil
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

import cffi

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # fluentbit_kinesis/
CHECKOUT_CSRC = PACKAGE_DIR.parent / "csrc"
# the shim's C files, each compiled on its own; what they share is in fbk.h
SHIM_HEADER = "fbk.h"
SHIM_FILES = ("abi.c", "flbapi.c", "log.c", "python.c", "call.c", "engine.c")
# the native fast path's, sharing fastjson.h: from a checkout or an sdist, built at install time
FASTJSON_HEADER = "fastjson.h"
PACE_HEADER = "fastjson_pace.h"
SIMD_HEADER = "fastjson_simd.h"
FASTJSON_FILES = ("fastjson.c", "fastjson_msgpack.c", "fastjson_json.c", "fastjson_double.c",
                  "fastjson_format.c", "fastjson_format_walk.c", "fastjson_format_values.c")
# the PutRecords body in one pass (issue 18), in the same module
BODY_FILES = ("fastjson_body.c",)
# KPL aggregation's per-record part (issue 18), in the same module: fastjson_kpl.h's files
KPL_FILES = ("fastjson_kpl.c", "fastjson_kpl_write.c", "fastjson_kpl_check.c", "fastjson_md5.c",
             "fastjson_kpl_table.c")
KPL_TABLE_HEADER = "fastjson_kpl_table.h"
# the kernels with SIMD versions and the level that runs (fastjson_simd.h), in the same module
SIMD_FILES = ("fastjson_simd.c", "fastjson_md5_many.c", "fastjson_base64_avx2.c")
# an EntryTable's per-entry kernels and the PutRecords answer's scan (issue 18), in the same module
ENTRY_FILES = ("fastjson_entries.c", "fastjson_answer.c", "fastjson_answer_usual.c", "fastjson_indices.c")
# pacing's per-request work over every shard's state (issue 18), in the same module: fastjson_pace.h's
PACE_FILES = ("fastjson_pace.c", "fastjson_pace_plan.c")
# `compression zstd` a frame per record over the fast path's table (issue 18): fastjson_frames.h's
FRAME_FILES = ("fastjson_frames.c",)
FRAMES_HEADER = "fastjson_frames.h"
FASTJSON_SOURCES = tuple(CHECKOUT_CSRC / name
                         for name in FASTJSON_FILES + BODY_FILES + KPL_FILES + SIMD_FILES + ENTRY_FILES
                                         + PACE_FILES + FRAME_FILES)
# floats as Python computes them: no a * b + c fused into one rounding (aarch64 gcc does by default)
FLOAT_FLAGS = ("-ffp-contract=off",)

FASTJSON_API = """
    int fj_convert(const uint8_t *data, size_t size,
                   const uint8_t *key_names, const uint32_t *key_lens, int key_depth,
                   const uint8_t *log_key, int log_key_len, int flags,
                   uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
                   size_t *out_used, size_t *n_records);
    int fj_format(const uint8_t *data, size_t size, const uint8_t *names, size_t names_size,
                  const uint8_t *plans, const uint32_t *plan_offsets, const uint64_t *plan_hashes, size_t n_plans,
                  const uint8_t *key_names, const uint32_t *key_lens, int key_depth, int flags,
                  uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
                  size_t *out_used, size_t *n_records);
"""

FASTJSON_API += """
    #define FJ_NO_HASH_KEY 0xFFFFFFFF
    int fj_put_records_body(const uint8_t *stream_field, size_t stream_field_len,
                            const uint8_t *data, size_t data_size, const uint32_t *data_lens,
                            const uint8_t *keys, size_t keys_size, const uint32_t *key_lens,
                            const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_lens,
                            size_t n, uint8_t *out, size_t out_cap, size_t *out_used);
"""

FASTJSON_API += """
    #define FJ_KPL_ENTRY 6
    struct fj_kpl_input {
        const uint8_t *data;
        size_t data_size;
        const uint32_t *data_lens;
        size_t n;
        const uint32_t *rec_keys;
        const uint8_t *keyless;
        const uint8_t *key_bytes;
        size_t key_bytes_size;
        const uint32_t *key_lens;
        const int32_t *key_shards;
        const uint8_t *hash_bytes;
        size_t hash_bytes_size;
        const uint32_t *hash_lens;
        size_t n_keys, keyless_base, n_keyless, n_shards, turn;
        uint64_t limit, skip;
    };
    int fj_kpl_pack(const struct fj_kpl_input *in, uint8_t *out, size_t out_cap, size_t *out_used,
                    uint32_t *entries, size_t *n_entries, uint32_t *positions);
    #define FJ_KPL_ROW 4
    struct fj_kpl_table_out {
        uint8_t *data, *keys, *hashes;
        size_t data_cap, keys_cap, hashes_cap;
        size_t data_used, keys_used, hashes_used;
        uint32_t *data_at, *data_len, *key_at, *key_len, *hash_at, *hash_len, *sizes;
        uint32_t *rows, *events;
        size_t n_entries, n_aggregates;
    };
    int fj_kpl_key_ids(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                       const uint8_t *keyless, size_t n, uint32_t *ids, uint32_t *firsts, size_t *n_ids);
    int fj_kpl_pack_table(const struct fj_kpl_input *in, const uint32_t *data_at, const uint32_t *in_events,
                          struct fj_kpl_table_out *out);
"""

FASTJSON_API += """
    int fj_shard_indices(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                         const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at,
                         const uint32_t *hash_len, size_t n, const uint64_t *bounds, size_t n_shards,
                         int32_t *out, uint8_t *memo, size_t memo_size);
    int fj_group(const int32_t *shards, size_t n, size_t lanes, uint32_t *order, uint32_t *first);
    int fj_body_at(const uint8_t *stream_field, size_t stream_field_len,
                   const uint8_t *data, size_t data_size, const uint32_t *data_at, const uint32_t *data_len,
                   const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                   const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at, const uint32_t *hash_len,
                   size_t n_table, const uint32_t *indices, size_t n_indices,
                   uint8_t *out, size_t out_cap, size_t *out_used);
    int64_t fj_failed_entries(const uint8_t *data, size_t size, size_t count);
    int fj_sum_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint64_t *sum);
    int fj_gather_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint32_t *out);
    int fj_take_lanes(const uint32_t *order, const uint32_t *sizes, size_t order_n, uint32_t *bounds, size_t lanes,
                      const uint32_t *ns, const uint32_t *counts, size_t n, uint32_t *group, uint64_t *taken,
                      uint32_t *emptied, size_t *emptied_n);
    int fj_sort_indices(uint32_t *idx, size_t n, size_t bound, uint64_t *bits, size_t words);
    int fj_ledger_line(const uint32_t *idx, size_t n, const uint8_t *key, size_t key_len, uint64_t when,
                       uint8_t *out, size_t cap, size_t *used);
    struct fj_table_keys {
        const uint8_t *chunk, *pool;
        size_t chunk_size, max_key, pool_count, pool_start, key_size;
    };
    struct fj_table_out {
        uint32_t *data_at, *data_len, *key_at, *key_len, *sizes;
        uint8_t *keys;
        size_t keys_cap, keys_used;
        uint32_t max_data, made_up;
        uint8_t *keyless;
    };
    int fj_table_columns(const uint32_t *records, size_t n, const struct fj_table_keys *in,
                         struct fj_table_out *out);
"""

FASTJSON_API += """
    #define FJ_PACE_FULL -3
    struct fj_pace_table {
        double *d;
        int64_t *q;
        size_t d_n, q_n, capacity, live, max_shards;
        double limit_records, limit_bytes, ceiling, burst, min_share, unknown_ceiling, cooldown, window,
               keep, min_cut, max_cut, probe_base, probe_quiet, batch, exact, min_records, min_bytes;
        int64_t min_part;
    };
    int fj_pace_plan(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                     const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                     int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts, uint32_t *planned,
                     uint32_t *planned_counts, uint32_t *created, size_t created_cap, size_t *info);
    int fj_pace_take(struct fj_pace_table *t, double now, const uint32_t *entries, const uint32_t *sizes,
                     size_t sizes_n, uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n,
                     int32_t *slots, int64_t unknown, int64_t max_count, int64_t max_bytes, uint32_t *counts,
                     uint32_t *planned, uint32_t *planned_counts, uint32_t *created, size_t created_cap,
                     size_t *info, uint32_t *group, size_t group_cap, uint64_t *taken, uint32_t *emptied,
                     size_t *took, uint8_t *seen);
    int fj_pace_waits(struct fj_pace_table *t, double now, const uint32_t *sizes, size_t sizes_n,
                      const uint32_t *bounds, size_t n_lanes, const uint32_t *order, size_t n, int32_t *slots,
                      int64_t unknown, double *waits, uint32_t *created, size_t created_cap, size_t *info);
    int fj_pace_answered(struct fj_pace_table *t, double now, const uint32_t *lanes, size_t n, size_t n_lanes,
                         int32_t *slots, int64_t unknown, const uint32_t *acked, const uint64_t *acked_bytes,
                         const uint32_t *throttled, uint32_t *created, size_t created_cap, size_t *info);
"""

FASTJSON_API += """
    struct fj_framer { void *compress; void *is_error; void *ctx; int level; };
    size_t fj_frames_cap(const uint32_t *len, size_t n);
    int fj_frames(const struct fj_framer *framer, const uint8_t *data, size_t data_size, uint32_t *at,
                  uint32_t *len, uint32_t *sizes, size_t n, uint8_t *out, size_t cap, size_t *used, uint32_t *longest);
    int fj_simd_limit(int limit);
    int fj_simd_best(void);
    int fj_md5_many_at(int level, const uint8_t *data, size_t data_size, const uint64_t *at, const uint64_t *lens,
                       size_t n, uint8_t *digests);
"""

EMBEDDING_API = """
    int fbk_py_init(void *handle, int id);
    int fbk_py_flush(int id, const void *data, size_t size, const char *tag);
    int fbk_py_exit(int id);
    int fbk_py_take(int id, const void *data, size_t size, const char *tag);
"""

CALLBACKS = """
    const char *fbk_get_property(void *handle, const char *key);
    int fbk_log_check(void *handle, int level);
    void fbk_log(void *handle, int level, const char *message);
    const char *fbk_instance_name(void *handle);
    int fbk_cmt_available(void *handle);
    void *fbk_cmt_create(void *handle, const char *name, const char *help, int gauge, int with_shard);
    int fbk_cmt_set(void *handle, void *metric, int gauge, double value, const char *shard);
    int fbk_api_generation(void *handle);
"""

INIT_CODE = """
import os, site, sys
for _dir in {site_dirs!r}:
    site.addsitedir(_dir)
_override = [p for p in os.environ.get("FLUENTBIT_KINESIS_PYTHONPATH", "").split(":") if p]
sys.path[:0] = _override + [{source_root!r}]
from _fluentbit_kinesis_shim import ffi, lib
from fluentbit_kinesis import plugin
plugin.bind(ffi, lib)
"""


def shim_dir() -> Path:
    """The folder of the shim's C files: packaged in fluentbit_kinesis/csrc/, or csrc/ in a checkout."""
    folder = PACKAGE_DIR / "csrc"
    if not (folder / SHIM_HEADER).exists():
        folder = CHECKOUT_CSRC
    return folder


def build(output: Path) -> Path:
    """Compiles the plugin for the running interpreter and writes it to `output`."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SystemExit(
            f"{sys.executable} has no shared libpython; the plugin embeds Python, "
            "so use a Python built with --enable-shared (Debian's python3 is)")
    ffi = cffi.FFI()
    ffi.embedding_api(EMBEDDING_API)
    ffi.cdef(CALLBACKS)
    folder = shim_dir()
    # absolute paths: cffi compiles in a temporary directory
    ffi.set_source("_fluentbit_kinesis_shim", f'#include "{SHIM_HEADER}"',
                   sources=[str(folder / name) for name in SHIM_FILES],
                   include_dirs=[str(folder)],
                   extra_compile_args=["-O2", "-Wall"],
                   define_macros=[("FBK_PYTHON_EXECUTABLE", json.dumps(sys.executable)),
                                  ("FBK_PYTHON_STDLIB", json.dumps(sysconfig.get_path("stdlib"))),
                                  ("FBK_PYTHON_PLATLIBDIR", json.dumps(sys.platlibdir))],
                   extra_link_args=["-ldl", "-lpthread",
                                    "-Wl,-rpath," + sysconfig.get_config_var("LIBDIR")])
    site_dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    ffi.embedding_init_code(INIT_CODE.format(
        site_dirs=site_dirs, source_root=str(PACKAGE_DIR.parent)))
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = ffi.compile(tmpdir=tmp, target="kinesis.*", verbose=False)
        # a new file, not rewritten in place: a running Fluent Bit keeps its mapped copy
        shutil.copy(built, output.with_name(output.name + ".tmp"))
        os.replace(output.with_name(output.name + ".tmp"), output)
    return output


def fastjson_ffi(extra_compile_args=("-O2", "-Wall"), extra_link_args=(), root=None):
    """The cffi builder of fluentbit_kinesis._fastjson, its files named
    relative to `root`, or absolute without one (cffi's own compile runs in a
    temporary directory): so for build_fastjson and, with its own flags,
    tests/fuzz/build_fastjson_cov.py; setup.py's is setuptools_fastjson_ffi."""
    def name(path):
        return os.path.relpath(path, root) if root else str(path)
    ffi = cffi.FFI()
    ffi.cdef(FASTJSON_API)
    headers = (FASTJSON_HEADER, PACE_HEADER, SIMD_HEADER, KPL_TABLE_HEADER, FRAMES_HEADER)
    ffi.set_source("fluentbit_kinesis._fastjson", "".join(f'#include "{header}"\n' for header in headers),
                   sources=[name(path) for path in FASTJSON_SOURCES],
                   include_dirs=[name(CHECKOUT_CSRC)],
                   extra_compile_args=list(extra_compile_args) + list(FLOAT_FLAGS),
                   extra_link_args=list(extra_link_args))
    return ffi


def setuptools_fastjson_ffi():
    """fastjson_ffi for setup.py's cffi_modules: setuptools runs in the source
    tree and wants its paths relative to it (an absolute one fails the build
    of a wheel from the sdist)."""
    return fastjson_ffi(root=CHECKOUT_CSRC.parent)


def build_fastjson() -> Path:
    """Compiles fluentbit_kinesis._fastjson in place, into the package directory."""
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(fastjson_ffi().compile(tmpdir=tmp, verbose=False))
        target = PACKAGE_DIR / built.name
        for stale in PACKAGE_DIR.glob("_fastjson.*.so"):  # another suffix would shadow or be shadowed
            if stale != target:
                stale.unlink()
        shutil.copy(built, target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)  # a running process keeps its mapped copy
    return target


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bin/kinesis.so")
    if FASTJSON_SOURCES[0].exists():  # a checkout (installed packages got it from pip)
        print(build_fastjson())
    print(build(target))

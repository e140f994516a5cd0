/*
 * fluentbit-kinesis: where the embedded Python's large blocks come from.
 *
 * glibc serves every thread from a malloc arena of its own (up to 8 per
 * core), and after a large mapped block is freed it raises its mmap threshold
 * to that block's size (up to 32 MiB) and keeps up to twice that free at the
 * top of each arena. A chunk's buffers are 2-12 MiB (the chunk's copy, the
 * fast path's output, request bodies), so with the hand-off's threads each
 * arena ended up holding its own few chunks' worth: 144 MB of peak RSS on a
 * plain backlog where one thread needed 74.
 *
 * Changing glibc's settings (mallopt) would change them for all of Fluent
 * Bit. Instead Python's raw allocator (under pymalloc, which keeps blocks up to
 * 512 bytes in arenas of its own) is wrapped: blocks of FBK_BIG_BLOCK and more
 * are mapped on their own and unmapped when freed, so they go back to the
 * system at once and never move glibc's thresholds; smaller ones still come
 * from malloc. Each block carries a 16-byte header saying which it is.
 */
#include <Python.h> /* first, as Python asks */

#include "fbk.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define FBK_BIG_BLOCK (256 * 1024)

struct fbk_block {
    size_t size;   /* mapped: the mapping's length; else what was asked for */
    size_t mapped;
};

_Static_assert(sizeof(struct fbk_block) == 16, "the header keeps malloc's 16-byte alignment");

static PyMemAllocatorEx fbk_system; /* the raw allocator Python had (malloc) */

static void *fbk_map(size_t size)
{
    size_t length = size + sizeof(struct fbk_block);
    struct fbk_block *block;
    if (length < size) {
        return NULL;
    }
    block = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) {
        return NULL;
    }
    block->size = length;
    block->mapped = 1;
    return block + 1;
}

static void *fbk_small(void *memory, size_t size)
{
    struct fbk_block *block = memory;
    if (block == NULL) {
        return NULL;
    }
    block->size = size;
    block->mapped = 0;
    return block + 1;
}

static void *fbk_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size >= FBK_BIG_BLOCK) {
        return fbk_map(size);
    }
    return fbk_small(fbk_system.malloc(fbk_system.ctx, size + sizeof(struct fbk_block)), size);
}

static void *fbk_calloc(void *ctx, size_t count, size_t each)
{
    size_t size;
    (void)ctx;
    if (each != 0 && count > (SIZE_MAX - sizeof(struct fbk_block)) / each) {
        return NULL;
    }
    size = count * each;
    if (size >= FBK_BIG_BLOCK) {
        return fbk_map(size); /* fresh mappings are zeroed */
    }
    return fbk_small(fbk_system.calloc(fbk_system.ctx, 1, size + sizeof(struct fbk_block)), size);
}

static void fbk_free(void *ctx, void *ptr)
{
    struct fbk_block *block;
    (void)ctx;
    if (ptr == NULL) {
        return;
    }
    block = (struct fbk_block *)ptr - 1;
    if (block->mapped) {
        munmap(block, block->size);
    }
    else {
        fbk_system.free(fbk_system.ctx, block);
    }
}

static void *fbk_realloc(void *ctx, void *ptr, size_t size)
{
    struct fbk_block *block;
    size_t had;
    void *moved;
    if (ptr == NULL) {
        return fbk_malloc(ctx, size);
    }
    block = (struct fbk_block *)ptr - 1;
    if (!block->mapped && size < FBK_BIG_BLOCK) {
        return fbk_small(fbk_system.realloc(fbk_system.ctx, block, size + sizeof(struct fbk_block)), size);
    }
    if (block->mapped && size >= FBK_BIG_BLOCK && size + sizeof(struct fbk_block) > size) {
        block = mremap(block, block->size, size + sizeof(struct fbk_block), MREMAP_MAYMOVE);
        if (block == MAP_FAILED) {
            return NULL;
        }
        block->size = size + sizeof(struct fbk_block);
        return block + 1;
    }
    /* from malloc to a mapping or back */
    had = block->mapped ? block->size - sizeof(struct fbk_block) : block->size;
    moved = fbk_malloc(ctx, size);
    if (moved != NULL) {
        memcpy(moved, ptr, had < size ? had : size);
        fbk_free(ctx, ptr);
    }
    return moved;
}

/* Between Py_PreInitialize and Py_InitializeFromConfig, as Python allows:
 * every raw block from then on is one of ours. */
void fbk_wrap_python_allocator(void)
{
    PyMemAllocatorEx ours = {NULL, fbk_malloc, fbk_calloc, fbk_realloc, fbk_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &fbk_system);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &ours);
}

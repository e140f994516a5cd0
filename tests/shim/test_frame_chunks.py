"""Python's frame-stack chunks (csrc/python.c): freed small blocks of Python's
arena allocator are kept for the next request of the same size, not unmapped
and mapped again; larger blocks, and more than eight, go back to Python's own.

A sitecustomize module, which the plugin's embedded Python imports while it
starts, exercises the allocator Python then has, through the C API as CPython
does, and writes what it saw: a kept block still holds what was written to it,
a block that was unmapped comes back zeroed."""
import json
import textwrap

from tests.support.harness import base_options

FLB_OK = 1

PROBE = textwrap.dedent("""
    import ctypes, json, os

    class Arenas(ctypes.Structure):
        _fields_ = [("ctx", ctypes.c_void_p),
                    ("alloc", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)),
                    ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t))]

    arenas = Arenas()
    ctypes.pythonapi.PyObject_GetArenaAllocator(ctypes.byref(arenas))

    def alloc(size):
        return arenas.alloc(arenas.ctx, size)

    def marked_again(size, count):
        '''Of `count` blocks of `size`, each marked and freed, how many hold
        their mark when taken again (kept), and those blocks, held.'''
        blocks = [alloc(size) for _ in range(count)]
        for n, block in enumerate(blocks):
            ctypes.memset(block, 0xA0 + n, size)
        for block in blocks:
            arenas.free(arenas.ctx, block, size)
        again = [(alloc(size), size) for _ in range(count)]
        return sum(ctypes.string_at(block, 1)[0] != 0 for block, _ in again), again

    held = [(alloc(16384), 16384) for _ in range(8)]  # what Python kept while starting: taken first
    seen = {}
    for name, size, count in (("largest", 65536, 1), ("arena", 1 << 20, 1), ("chunk", 16384, 1),
                              ("nine", 16384, 9)):
        seen[name], blocks = marked_again(size, count)
        held += blocks
    for block, size in held:
        arenas.free(arenas.ctx, block, size)
    with open(os.environ["FBK_PROBE_OUT"], "w") as out:
        json.dump(seen, out)
""")


def test_freed_frame_chunks_are_kept_within_their_caps(kinesis, host, tmp_path):
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    h = host(env={"PYTHONPATH": str(probe_dir), "FBK_PROBE_OUT": str(out)})
    assert h.init(**base_options(kinesis, kinesis.create_stream())) == FLB_OK
    seen = json.loads(out.read_text())
    assert seen == {"chunk": 1, "nine": 8, "largest": 1, "arena": 0}, seen
    assert h.exit() == FLB_OK

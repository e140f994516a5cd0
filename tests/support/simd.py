"""The native kernels' SIMD levels (csrc/fastjson_simd.h) for tests: which
this CPU runs, and one forced for the kernels while a test runs."""
import contextlib

SCALAR, PORTABLE, AVX2 = 1, 2, 3
NAMES = {SCALAR: "scalar", PORTABLE: "portable", AVX2: "avx2"}


def levels():
    """The levels this CPU runs, scalar first; none without the module."""
    try:
        from fluentbit_kinesis._fastjson import lib
    except ImportError:
        return []
    return [level for level in NAMES if level <= lib.fj_simd_best()]


@contextlib.contextmanager
def forced(level):
    """The kernels at `level` (at most) inside, the CPU's best again after."""
    from fluentbit_kinesis._fastjson import lib
    assert lib.fj_simd_limit(level) == level
    try:
        yield level
    finally:
        lib.fj_simd_limit(0)

"""Builds fluentbit_kinesis._fastjson with libFuzzer's coverage
instrumentation (clang -fsanitize=fuzzer-no-link) into DIR, so atheris
(tests/fuzz/fuzz_shape.py, FUZZ_FASTJSON_DIR=DIR) is guided by the C code's
branches too. The normal build in the package is left alone.

    .venv/bin/python tests/fuzz/build_fastjson_cov.py DIR
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from fluentbit_kinesis.tools.build import fastjson_ffi  # noqa: E402


def main(target):
    os.environ["CC"] = "clang"
    os.environ["LDSHARED"] = "clang -shared"
    # the same sources as the package's build (build.py's FASTJSON_FILES),
    # instrumented, and linked to atheris's libFuzzer: the coverage symbols
    # resolve inside that copy, the one atheris loads itself (same file, so
    # the same handle); and to its custom mutator hook, which libFuzzer looks
    # up when it is loaded
    here = Path(atheris.__file__).parent
    libraries = [str(next(here.glob(name))) for name in ("custom_mutator.*.so", "core_with_libfuzzer.*.so")]
    ffi = fastjson_ffi(extra_compile_args=["-O1", "-g", "-fsanitize=fuzzer-no-link"],
                       extra_link_args=libraries + [f"-Wl,-rpath,{here}", "-Wl,--no-as-needed"])
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(ffi.compile(tmpdir=tmp))
        shutil.copy(built, target / built.name)
    print(target / built.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

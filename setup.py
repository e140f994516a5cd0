"""Ships the C files (every csrc/*.c and csrc/*.h: the shim's, fbk.h and its
files, and the fast path's) inside the package (fluentbit_kinesis/csrc/), so
an installed `fluentbit-kinesis build` can compile the plugin, and compiles
the native fast path fluentbit_kinesis._fastjson (cffi, csrc/fastjson*.c).
csrc/ stays the only copy in git; everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CSRC = Path(__file__).resolve().parent / "csrc"


class BuildPyWithShim(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "fluentbit_kinesis" / "csrc"
        shutil.rmtree(target, ignore_errors=True)  # exactly csrc's files, none left from an older build
        target.mkdir(parents=True)
        for source in sorted(CSRC.glob("*.[ch]")):
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithShim},
      cffi_modules=["fluentbit_kinesis/tools/build.py:setuptools_fastjson_ffi"])

"""Ships csrc/shim.c inside the package (fluentbit_kinesis/csrc/shim.c), so an
installed `fluentbit-kinesis build` can compile the plugin, and compiles the
native fast path fluentbit_kinesis._fastjson (cffi, csrc/fastjson.c). csrc/
stays the only copy in git; everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIM = Path(__file__).resolve().parent / "csrc" / "shim.c"


class BuildPyWithShim(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "fluentbit_kinesis" / "csrc" / "shim.c"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIM, target)


setup(cmdclass={"build_py": BuildPyWithShim},
      cffi_modules=["fluentbit_kinesis/build.py:fastjson_ffi"])

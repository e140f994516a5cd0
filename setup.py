"""Ships the shim's C files (csrc/shim.c, csrc/engine.c) inside the package
(fluentbit_kinesis/csrc/), so an installed `fluentbit-kinesis build` can
compile the plugin, and compiles the
native fast path fluentbit_kinesis._fastjson (cffi, csrc/fastjson.c). csrc/
stays the only copy in git; everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CSRC = Path(__file__).resolve().parent / "csrc"
SHIM_FILES = ("shim.c", "engine.c")  # as fluentbit_kinesis/tools/build.py compiles them


class BuildPyWithShim(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "fluentbit_kinesis" / "csrc"
        target.mkdir(parents=True, exist_ok=True)
        for name in SHIM_FILES:
            shutil.copyfile(CSRC / name, target / name)


setup(cmdclass={"build_py": BuildPyWithShim},
      cffi_modules=["fluentbit_kinesis/tools/build.py:fastjson_ffi"])

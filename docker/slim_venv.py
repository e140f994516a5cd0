"""Trims the plugin's venv for the image, then checks what the plugin needs
is still there. Run by the venv's own Python, after `pip uninstall pip
setuptools`:

    $VENV/bin/python docker/slim_venv.py trim $VENV    (the build stage)
    $VENV/bin/python docker/slim_venv.py check $VENV   (the image: only the imports and the check)

`check` run as root also writes the __pycache__ of the standard library
modules the plugin imports (Debian compiles the standard library only when
its interpreter package is installed, which the image does without).

- zstandard: only its C backend (the cffi backend is a second copy of libzstd)
- extension modules without debug symbols (strip --strip-unneeded; kinesis.so
  is left as built)
- botocore's data: the services the plugin calls (kinesis, and sts for
  role_arn) and every service botocore's credential chain creates a client
  for, read from botocore's own credentials.py and tokens.py (sts for
  assume-role and web identity, sso, sso-oidc, signin in current botocore),
  plus the files every session reads (endpoints, partitions, _retry, defaults)
- __pycache__: removed, then written again only for the modules the plugin,
  its CLI and the credential chain import (the image's user cannot write them)

Then, as the check: a client for each kept service, the whole credential
provider chain, zstd round trip on the C backend, and botocore's CA bundle.
"""
import compileall
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

MODE, VENV = sys.argv[1], Path(sys.argv[2])
assert MODE in ("trim", "check"), MODE
SITE = Path(sysconfig.get_path("purelib"))
PLUGIN_SERVICES = {"kinesis", "sts"}


def size(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())


def mb(n):
    return f"{n / 1e6:.1f} MB"


def credential_chain_services():
    """Services botocore's credential and token providers create clients for."""
    import botocore
    root = Path(botocore.__file__).parent
    found = set()
    for name in ("credentials.py", "tokens.py"):
        text = (root / name).read_text()
        found |= set(re.findall(r"""_client_creator\(\s*['"]([a-z0-9-]+)['"]""", text))
        found |= set(re.findall(r"""create_nested_client\(\s*[\w.]+,\s*['"]([a-z0-9-]+)['"]""", text))
        found |= set(re.findall(r"""create_client\(\s*['"]([a-z0-9-]+)['"]""", text))
    return found


before = size(VENV)
services = PLUGIN_SERVICES | credential_chain_services()
data = SITE / "botocore" / "data"
if MODE == "trim":
    print(f"slim_venv: {VENV} {mb(before)} before")

    # zstandard: the C backend only
    for f in list((SITE / "zstandard").glob("_cffi.*.so")) + [SITE / "zstandard" / "backend_cffi.py"]:
        if f.exists():
            f.unlink()

    # botocore's data
    removed = 0
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            removed += size(entry)
            shutil.rmtree(entry)
    print(f"slim_venv: botocore data kept for {', '.join(sorted(services))} and "
          f"{', '.join(sorted(p.name for p in data.iterdir() if p.is_file()))}; {mb(removed)} removed")

    # debug symbols
    sos = [str(p) for p in VENV.rglob("*.so") if p.name != "kinesis.so"]
    stripped = sum(os.path.getsize(p) for p in sos)
    subprocess.run(["strip", "--strip-unneeded", *sos], check=True)
    print(f"slim_venv: {len(sos)} extension modules stripped: {mb(stripped)} -> {mb(sum(os.path.getsize(p) for p in sos))}")

# __pycache__: only what is imported
if MODE == "trim":
    for cache in list(VENV.rglob("__pycache__")):
        shutil.rmtree(cache)
missing = [s for s in services if not (data / s).is_dir()]
assert not missing, f"botocore has no data for {missing}"
sys.dont_write_bytecode = False
import fluentbit_kinesis  # noqa: E402

for module in pkgutil.walk_packages(fluentbit_kinesis.__path__, "fluentbit_kinesis."):
    importlib.import_module(module.name)
for name in ("zstandard", "isal.isal_zlib", "isal.igzip", "orjson", "msgpack", "yaml", "urllib3",
             "prometheus_client", "botocore.session", "botocore.credentials", "botocore.tokens",
             "botocore.auth", "botocore.awsrequest", "botocore.config", "botocore.httpsession",
             "botocore.utils", "_cffi_backend", "encodings.idna", "encodings.ascii", "encodings.latin_1",
             "unicodedata", "ssl", "hashlib", "hmac", "json", "http.client", "email.parser", "logging.handlers"):
    importlib.import_module(name)

# the check: every service's client, the whole credential chain, zstd, the CA bundle
import botocore.session  # noqa: E402
import botocore.httpsession  # noqa: E402
import zstandard  # noqa: E402

session = botocore.session.Session()
session.set_config_variable("region", "us-east-1")
for service in sorted(services):
    session.create_client(service, region_name="us-east-1",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
chain = session.get_component("credential_provider")
methods = [p.METHOD for p in chain.providers]
print(f"slim_venv: credential chain: {', '.join(methods)}")
assert zstandard.backend == "cext", zstandard.backend
assert zstandard.ZstdDecompressor().decompress(zstandard.ZstdCompressor().compress(b"x" * 100)) == b"x" * 100
assert os.path.exists(botocore.httpsession.get_cert_path(True))

# the CLI's own modules may be imported lazily: compile the package whole (small)
compileall.compile_dir(str(Path(fluentbit_kinesis.__file__).parent), quiet=1)
if MODE == "trim":
    after = size(VENV)
    print(f"slim_venv: {VENV} {mb(after)} after ({mb(before - after)} removed)")
    for p in sorted(SITE.iterdir(), key=size, reverse=True)[:8]:
        print(f"    {mb(size(p)):>9}  {p.name}")
else:
    print(f"slim_venv: {VENV}: every module imports, {len(services)} service clients, {len(methods)} credential providers")

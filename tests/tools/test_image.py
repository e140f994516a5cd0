"""The container image without a Docker engine: the Dockerfile's final stage
copies the official Fluent Bit binary, which needs shared libraries that only
the final stage's `apt-get install` provides. For a Fluent Bit built here
(FLUENT_BIT_IMAGE_BINARY, default /tmp/fb/fluent-bit-4.2.8; skipped when
absent) every DT_NEEDED library must belong to a Debian package in that list,
or to the base image's own essential packages."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("FLUENT_BIT_IMAGE_BINARY", "/tmp/fb/fluent-bit-4.2.8")
# in every debian:*-slim image (Essential: yes, or required by apt itself)
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def final_stage_packages(dockerfile):
    """Packages of the `apt-get install` in the Dockerfile's last stage."""
    text = dockerfile.read_text().replace("\\\n", " ")
    final = re.split(r"^FROM ", text, flags=re.M)[-1]
    installs = re.findall(r"apt-get install ([^&\n]*)", final)
    assert len(installs) == 1, installs
    return {word for word in installs[0].split() if not word.startswith("-")}


def same_package(name):
    """Debian 13 renamed libraries for 64-bit time_t (libssl3 -> libssl3t64):
    one name across releases."""
    return re.sub(r"t64$", "", name.split(":")[0])


def needed_libraries(binary):
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


def resolved_paths(binary):
    """soname -> path, as the dynamic loader finds them here."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = {}
    for line in out.splitlines():
        match = re.match(r"\s*(\S+) => (/\S+)", line)
        if match:
            paths[match.group(1)] = match.group(2)
        elif line.strip().startswith("/"):
            path = line.split()[0]
            paths[os.path.basename(path)] = path
    return paths


def package_of(path):
    """The Debian package owning `path`, trying the merged-/usr aliases dpkg may have recorded."""
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.add(p[len("/usr"):])
        elif p.startswith("/lib"):
            candidates.add("/usr" + p)
    for candidate in sorted(candidates):
        found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":")[0].split(",")[0].strip()
    return None


def test_final_stage_parses():
    packages = final_stage_packages(ROOT / "Dockerfile")
    assert {"python3", "libssl3t64", "libyaml-0-2"} <= packages
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM fluent/fluent-bit:\$\{FLUENT_BIT_VERSION\} AS fluent-bit$", text, re.M)
    assert "COPY --from=fluent-bit /fluent-bit /fluent-bit" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert "cmake" not in text  # Fluent Bit is not compiled


def test_every_library_the_binary_needs_is_installed_by_the_final_stage():
    if not os.path.exists(BINARY):
        pytest.skip(f"no local Fluent Bit build at {BINARY} (FLUENT_BIT_IMAGE_BINARY)")
    if not (shutil.which("dpkg") and shutil.which("readelf") and shutil.which("ldd")):
        pytest.skip("needs dpkg, readelf and ldd")
    installed = {same_package(p) for p in final_stage_packages(ROOT / "Dockerfile")} | BASE_PACKAGES
    paths = resolved_paths(BINARY)
    needed = needed_libraries(BINARY)
    assert needed
    missing = []
    for soname in needed:
        path = paths.get(soname)
        package = package_of(path) if path else None
        if package is None or same_package(package) not in installed:
            missing.append((soname, path, package))
    assert missing == [], f"libraries of {BINARY} no final-stage package provides: {missing}"

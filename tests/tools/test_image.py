"""The container image (Dockerfile). Without a Docker engine: the Dockerfile's
shape, and that docker/packages-for maps every library a Fluent Bit binary
links to a Debian package. With one (`.ci/docker-engine` starts it; CI does):
the plugin stages are built for every Debian release the Dockerfile documents
and the image's own Python and kinesis.so are driven through the ABI test host
against moto, as Fluent Bit would; with a Fluent Bit image at hand (a local
fluent/fluent-bit image, or a stand-in made from FLUENT_BIT), the whole image
is built and run (.ci/image-check). Fluent Bit itself is never built here."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.harness import HOST, REGION, FAKE_CREDENTIALS, Host, make_chunk, numbered_records

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SUITES = ["bookworm", "trixie"]  # DEBIAN=bookworm-slim and trixie-slim, as the Dockerfile documents
FLB_OK = 1


def fluent_bit_binary():
    binary = os.environ.get("FLUENT_BIT") or shutil.which("fluent-bit")
    return binary if binary and os.access(binary, os.X_OK) else None


def test_dockerfile_shape():
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", DOCKERFILE, re.M)
    assert [name for _, name in stages] == ["build", "plugin", "fluent-bit", ""]
    assert stages[2][0] == "${FLUENT_BIT_IMAGE}" and stages[3][0] == "plugin"
    assert re.search(r"^ARG FLUENT_BIT_IMAGE=fluent/fluent-bit:\$\{FLUENT_BIT_VERSION\}$", DOCKERFILE, re.M)
    assert "COPY --from=fluent-bit /fluent-bit /fluent-bit" in DOCKERFILE
    assert re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)[-1] == "10001"
    assert 'ENV STATE_DIRECTORY="/var/lib/fluentbit-kinesis"' in DOCKERFILE
    assert "cmake" not in DOCKERFILE  # Fluent Bit is not compiled
    # no package name that exists in one Debian release only: they come from ldd
    for line in re.findall(r"apt-get install[^&]*", DOCKERFILE.replace("\\\n", " ")):
        assert "t64" not in line and not re.search(r"libpython3\.\d+", line), line


def test_packages_for_maps_every_library_of_a_fluent_bit_binary():
    binary = fluent_bit_binary()
    if binary is None:
        pytest.skip("no Fluent Bit binary (FLUENT_BIT or fluent-bit on PATH) to read the libraries of")
    if not (shutil.which("dpkg") and shutil.which("ldd") and shutil.which("apt-cache")):
        pytest.skip("needs dpkg, ldd and apt-cache (Debian)")
    found = subprocess.run([str(ROOT / "docker" / "packages-for"), binary], capture_output=True, text=True)
    assert found.returncode == 0 and not found.stderr, found.stderr
    packages = found.stdout.split()
    assert "libc6" in packages and len(packages) >= 3
    for package in packages:
        assert subprocess.run(["dpkg", "-s", package], capture_output=True).returncode == 0, package


# ---- with a Docker engine ------------------------------------------------------------

def _engine():
    if not shutil.which("docker"):
        return "no docker client (apt-get install docker.io; .ci/docker-engine starts an engine)"
    answer = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    return None if answer.returncode == 0 else "no Docker engine answers (.ci/docker-engine starts one)"


@pytest.fixture(scope="module", params=SUITES)
def plugin_image(request):
    """fluentbit-kinesis:SUITE-plugin: the plugin stages for one Debian release."""
    why = _engine()
    if why:
        pytest.skip(why)
    suite = request.param
    base = subprocess.run([str(ROOT / ".ci" / "base-image"), suite], capture_output=True, text=True, timeout=900)
    assert base.returncode == 0, base.stdout[-2000:] + base.stderr[-2000:]
    tag = f"fluentbit-kinesis:{suite}-plugin"
    built = subprocess.run(["docker", "build", "--network", "host", "--build-arg", f"DEBIAN={suite}-slim",
                            "--target", "plugin", "-t", tag, str(ROOT)],
                           capture_output=True, text=True, timeout=1800, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return tag


def test_the_images_plugin_runs_under_the_test_host(plugin_image, kinesis, tmp_path):
    """The image's own libpython, venv and kinesis.so, as its user 10001, with
    the image's state directory: records flushed through the ABI arrive once."""
    stream = kinesis.create_stream(shards=2)
    tmp_path.chmod(0o755)  # the chunks the host reads, as user 10001
    credentials = [arg for key, value in FAKE_CREDENTIALS.items() for arg in ("-e", f"{key}={value}")]
    argv = ["docker", "run", "--rm", "-i", "--network", "host", *credentials,
            "-v", f"{HOST}:/usr/local/bin/flb-test-host:ro", "-v", f"{tmp_path}:{tmp_path}",
            plugin_image, "flb-test-host", "/fluent-bit/kinesis/kinesis.so"]
    h = Host(tmp_path, argv=argv)
    try:
        assert h.init(region=REGION, stream=stream, endpoint=kinesis.url) == FLB_OK
        records = numbered_records(500, "image")
        assert h.flush(make_chunk(records)) == FLB_OK
        assert h.exit() == FLB_OK
    finally:
        h.close()
    got = sorted(kinesis.read_all(stream).data)
    assert len(got) == len(records) and len(set(got)) == len(records)
    log = h.stderr_path.read_text(errors="replace")
    assert "durable state (ledger, hand-off spool) in /var/lib/fluentbit-kinesis" in log, log[-2000:]
    uid = subprocess.run(["docker", "run", "--rm", plugin_image, "id", "-u"], capture_output=True, text=True)
    assert uid.stdout.strip() == "10001"
    for tool in ("gcc", "cc", "pip", "pip3"):
        found = subprocess.run(["docker", "run", "--rm", plugin_image, "sh", "-c", f"command -v {tool}"],
                               capture_output=True, text=True)
        assert found.returncode != 0, f"{tool} in the image: {found.stdout}"


def test_the_whole_image_builds_and_runs():
    """.ci/image-check for one release: the full image over a Fluent Bit image
    (local, or a stand-in from FLUENT_BIT), its size over Fluent Bit, and its
    run: forward input -> moto exactly once, non-root, metrics on Fluent Bit's
    endpoint, `docker stop` losing nothing acknowledged."""
    why = _engine()
    if why:
        pytest.skip(why)
    have_image = subprocess.run(["docker", "image", "inspect", "fluent/fluent-bit:4.2.8"],
                                capture_output=True).returncode == 0
    if not (have_image or fluent_bit_binary() or os.environ.get("FLUENT_BIT_IMAGE")):
        pytest.skip("no Fluent Bit image: no registry is reachable for fluent/fluent-bit:4.2.8, and no "
                    "FLUENT_BIT binary for a stand-in; the plugin stages were built and run above")
    import sys
    checked = subprocess.run([str(ROOT / ".ci" / "image-check"), "trixie"], capture_output=True, text=True,
                             timeout=2400, cwd=ROOT, env=dict(os.environ, PYTHON=sys.executable))
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out[-4000:]
    assert "trixie: image built" in out and '"arrived"' in out, out[-4000:]

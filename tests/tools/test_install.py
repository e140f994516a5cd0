"""What the container image does, done outside Docker: `pip install .` into a
fresh venv, `fluentbit-kinesis build --output`, the default config checked with
the image's environment, and the built plugin loaded by the ABI test host."""
import io
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from fluentbit_kinesis.tools import cli
from tests.support.harness import ROOT, base_options, make_chunk, numbered_records

FLB_OK = 1
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PLUGIN_IN_IMAGE = "/fluent-bit/kinesis/kinesis.so"
REQUIRED_ENV = {"AWS_REGION": "us-east-1", "KINESIS_STREAM": "app-logs"}


def image_env():
    """The final stage's ENV settings, but PATH."""
    final = DOCKERFILE.split("\nFROM ")[-1]
    env = {}
    for line in final.splitlines():
        if line.startswith("ENV ") and "PATH=" not in line:
            env.update((k, v) for k, v in re.findall(r'(\w+)="([^"]*)"', line))
    return env


def check(path, environ):
    out = io.StringIO()
    return cli.run_check(path, environ, out), out.getvalue()


@pytest.mark.parametrize("name", ["fluent-bit.conf", "fluent-bit.yaml"])
def test_default_config_takes_settings_from_environment(name):
    path = ROOT / "docker" / name
    code, out = check(path, dict(image_env(), **REQUIRED_ENV))
    assert code == 0, out
    assert "warning" not in out
    assert "    stream                             app-logs\n" in out
    assert "    partition_key                      -  (default)" in out
    env = dict(image_env(), **REQUIRED_ENV, KINESIS_PARTITION_KEY="kubernetes->pod_name",
               KINESIS_AGGREGATION="true", KINESIS_COMPRESSION="zstd", KINESIS_METRICS_PORT="2021")
    code, out = check(path, env)
    assert code == 0, out
    for line in ("partition_key                      kubernetes->pod_name\n", "aggregation                        true\n",
                 "compression                        zstd\n", "metrics_port                       2021\n",
                 "metrics_listen                     0.0.0.0\n"):
        assert line in out
    code, out = check(path, dict(image_env(), AWS_REGION="us-east-1"))
    assert code == 1 and "option 'stream' is required" in out
    code, out = check(path, dict(image_env(), **REQUIRED_ENV, KINESIS_COMPRESSION="lz4"))
    assert code == 1 and "option 'compression': 'lz4'" in out


def test_image_layout_agrees_with_the_configs():
    assert (ROOT / "docker" / "plugins.conf").read_text().split("Path")[1].strip() == PLUGIN_IN_IMAGE
    assert f"- {PLUGIN_IN_IMAGE}" in (ROOT / "docker" / "fluent-bit.yaml").read_text()
    assert "fluentbit-kinesis build --output " + str(Path(PLUGIN_IN_IMAGE).parent) in DOCKERFILE
    assert "Plugins_File  /fluent-bit/etc/plugins.conf" in (ROOT / "docker" / "fluent-bit.conf").read_text()
    stages = re.findall(r"^FROM .*$", DOCKERFILE, re.M)
    # the plugin's build, the plugin stage, the official Fluent Bit image, the final image
    assert len(stages) == 4 and " AS build" in stages[0] and " AS plugin" in stages[1]
    assert " AS fluent-bit" in stages[2] and stages[3] == "FROM plugin"
    assert re.search(r"^ARG FLUENT_BIT_VERSION=\d+\.\d+\.\d+$", DOCKERFILE, re.M)
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user and user[-1] not in ("0", "root")
    assert 'CMD ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"]' in DOCKERFILE
    for name in ("fluent-bit.conf", "fluent-bit.yaml", "plugins.conf"):
        assert f"docker/{name}" in DOCKERFILE


def _copy_source(target):
    """What an sdist holds (see MANIFEST.in), without the checkout's build leftovers."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_fastjson*.so")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in"):
        shutil.copy(ROOT / name, target / name)
    for name in ("csrc", "fluentbit_kinesis"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)


def test_pip_install_then_build_then_load(tmp_path, host, kinesis):
    source = tmp_path / "src"
    source.mkdir()
    _copy_source(source)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(bin_dir / "pip"), "install", "-q", str(source)], check=True, env=clean, cwd=tmp_path)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    shipped = site / "fluentbit_kinesis" / "csrc"
    sources = sorted(path.name for path in (ROOT / "csrc").glob("*.[ch]"))
    assert sorted(path.name for path in shipped.iterdir()) == sources
    for name in sources:
        assert (shipped / name).read_text() == (ROOT / "csrc" / name).read_text()
    assert list((site / "fluentbit_kinesis").glob("_fastjson*.so")), "pip did not build the native fast path"

    out_dir = tmp_path / "out"
    built = subprocess.run([str(bin_dir / "fluentbit-kinesis"), "build", "--output", str(out_dir)],
                           check=True, env=clean, cwd=tmp_path, capture_output=True, text=True)
    plugin = out_dir / "kinesis.so"
    assert built.stdout.strip() == str(plugin) and plugin.exists()
    binary = plugin.read_bytes()
    assert str(site).encode() in binary and str(ROOT).encode() not in binary

    code = subprocess.run([str(bin_dir / "fluentbit-kinesis"), "check", "-c", str(ROOT / "docker" / "fluent-bit.conf")],
                          env=dict(clean, **image_env(), **REQUIRED_ENV), capture_output=True, text=True)
    assert code.returncode == 0, code.stdout + code.stderr

    stream = kinesis.create_stream()
    # a service manager's PATH: the plugin must not depend on finding its python there
    h = host(plugin=plugin, env={"PYTHONPATH": "", "PATH": "/usr/bin:/bin"})
    assert h.init(**base_options(kinesis, stream)) == FLB_OK
    assert h.flush(make_chunk(numbered_records(20))) == FLB_OK
    assert len(kinesis.read_all(stream).data) == 20
    assert h.exit() == FLB_OK


@pytest.mark.parametrize("name", ["fluent-bit.conf", "fluent-bit.yaml"])
def test_default_config_starts_a_real_fluent_bit(fluent_bit, tmp_path, name):
    """The image's configs under Fluent Bit itself, with the image's paths moved to
    this checkout and the image's environment (dry_run: no AWS)."""
    from tests.support.harness import fluent_bit_version
    if (fluent_bit_version(fluent_bit) or (99,)) < (4, 2):
        pytest.skip("the image's configs use ${VAR:-default}: 4.2.8 and 5.1.1 expand it, 3.2.10 and older do not")
    import socket
    import time
    from tests.support.harness import PLUGIN
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for file in ("fluent-bit.conf", "fluent-bit.yaml", "plugins.conf"):
        text = (ROOT / "docker" / file).read_text().replace(PLUGIN_IN_IMAGE, str(PLUGIN))
        text = text.replace("/fluent-bit/etc/", f"{tmp_path}/").replace("24224", str(port))
        (tmp_path / file).write_text(text)
    env = dict(image_env(), **REQUIRED_ENV, KINESIS_DRY_RUN="true", KINESIS_PARTITION_KEY="service",
               PATH="/usr/bin:/bin")
    proc = subprocess.Popen([fluent_bit, "-c", str(tmp_path / name)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert "ready: stream=app-logs region=us-east-1" in out, out
    assert "[error]" not in out and "is used but not set" not in out, out

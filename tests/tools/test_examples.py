"""Every example config passes `fluentbit-kinesis check`."""
import io
import json
import re

import pytest
import yaml

from fluentbit_kinesis.tools import cli
from tests.support.harness import ROOT

EXAMPLES = ROOT / "examples"
PLUGIN_IN_IMAGE = "/fluent-bit/kinesis/kinesis.so"
ENV = {"AWS_REGION": "us-east-1", "KINESIS_EXTERNAL_ID": "example-external-id"}
CONFIGS = sorted(p for p in list(EXAMPLES.glob("*.conf")) + list(EXAMPLES.glob("*.yaml"))
                 if p.name != "plugins.conf")
OUTPUTS = {"two-streams": 2}


def check(path, environ):
    out = io.StringIO()
    return cli.run_check(path, environ, out), out.getvalue()


def test_there_are_classic_and_yaml_examples():
    stems = {p.stem for p in CONFIGS}
    for stem in ("plain", "partition-key", "aggregation-compression", "two-streams", "cross-account"):
        assert {p.suffix for p in CONFIGS if p.stem == stem} == {".conf", ".yaml"}, stem
    assert stems >= {"dry-run"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_passes_check(path):
    code, out = check(path, ENV)
    assert code == 0, out
    assert "warning" not in out
    assert f"OK: {OUTPUTS.get(path.stem, 1)} kinesis output(s), 0 error(s)" in out
    text = path.read_text()
    assert PLUGIN_IN_IMAGE in (EXAMPLES / "plugins.conf").read_text() if "Plugins_File" in text else PLUGIN_IN_IMAGE in text


def test_examples_fail_check_when_their_variables_are_missing():
    code, out = check(EXAMPLES / "plain.conf", {})
    assert code == 1 and "option 'region' is required" in out


def test_kubernetes_daemonset_config(tmp_path):
    documents = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "daemonset.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert {"DaemonSet", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= set(kinds)
    for name, text in kinds["ConfigMap"]["data"].items():
        (tmp_path / name).write_text(text)
    container = kinds["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == "/fluent-bit/etc/"
    assert "Plugins_File  /fluent-bit/etc/plugins.conf" in kinds["ConfigMap"]["data"]["fluent-bit.conf"]
    assert kinds["ConfigMap"]["data"]["plugins.conf"].split("Path")[1].strip() == PLUGIN_IN_IMAGE
    code, out = check(tmp_path / "fluent-bit.conf", env)
    assert code == 0, out
    assert "partition_key                      kubernetes->pod_name\n" in out
    assert "stream                             k8s-logs\n" in out
    port = str(container["ports"][0]["containerPort"])
    assert f"metrics_port                       {port}\n" in out
    assert kinds["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == port
    # the plugin's durable state beside Fluent Bit's storage.path, on a volume that outlives the pod
    config = kinds["ConfigMap"]["data"]["fluent-bit.conf"]
    storage = re.search(r"storage.path\s+(\S+)", config).group(1)
    ledger = re.search(r"ledger_path\s+(\S+)", config).group(1)
    assert "storage.type      filesystem" in config
    state = mounts["state"].rstrip("/") + "/"
    assert storage.startswith(state) and ledger.startswith(state) and not ledger.startswith(storage)
    volumes = {v["name"]: v for v in kinds["DaemonSet"]["spec"]["template"]["spec"]["volumes"]}
    assert "hostPath" in volumes["state"]


def test_ecs_firelens_task_definition(tmp_path):
    task = json.loads((EXAMPLES / "ecs" / "firelens-task-definition.json").read_text())
    router, app = task["containerDefinitions"]
    assert "firelensConfiguration" in router
    assert router["command"][router["command"].index("-e") + 1] == PLUGIN_IN_IMAGE
    options = app["logConfiguration"]["options"]
    assert app["logConfiguration"]["logDriver"] == "awsfirelens"
    # FireLens turns the options into one [OUTPUT] section
    section = "[OUTPUT]\n" + "".join(f"    {k} {v}\n" for k, v in options.items()) + "    Match web-firelens*\n"
    (tmp_path / "firelens.conf").write_text(section)
    code, out = check(tmp_path / "firelens.conf", {})
    assert code == 0, out
    assert "compression                        gzip\n" in out
    # the log router runs as root: its default state directory is on a host volume
    assert router["user"] == "0"
    [mount] = router["mountPoints"]
    assert mount["containerPath"] == "/var/lib/fluentbit-kinesis"
    assert {v["name"]: v for v in task["volumes"]}[mount["sourceVolume"]]["host"]["sourcePath"]


def test_dry_run_example_in_a_real_fluent_bit(fluent_bit, tmp_path):
    """examples/dry-run.conf under Fluent Bit itself: no AWS, a summary in the log."""
    import subprocess
    import time
    from tests.support.harness import PLUGIN
    (tmp_path / "plugins.conf").write_text(f"[PLUGINS]\n    Path {PLUGIN}\n")
    config = (EXAMPLES / "dry-run.conf").read_text().replace("metrics_log_interval  10s", "metrics_log_interval  1s")
    (tmp_path / "dry-run.conf").write_text(config)
    env = {"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"}  # as under a service manager
    proc = subprocess.Popen([fluent_bit, "-c", str(tmp_path / "dry-run.conf")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(4)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert "dry run: would have sent" in out, out
    assert "metrics: " in out and "[error]" not in out, out

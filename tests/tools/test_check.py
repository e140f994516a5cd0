"""`fluentbit-kinesis check`: the kinesis outputs of classic and YAML configs."""
import io
import subprocess
import sys
import textwrap

import pytest

from fluentbit_kinesis.tools import cli
from tests.support.harness import ROOT

ENV = {"AWS_REGION": "eu-west-1"}


def check(path, environ=ENV):
    out = io.StringIO()
    code = cli.run_check(path, environ, out)
    return code, out.getvalue()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_classic_with_include_glob_set_and_env(tmp_path):
    write(tmp_path, "outputs/a.conf", """\
        [OUTPUT]
            Name          kinesis
            Match         app.*
            Region        ${AWS_REGION}
            Stream        ${STREAM}
            Partition_Key kubernetes->pod_name
            workers       2
            tls.verify    off
            net.keepalive on
            retry_limit   false
        """)
    write(tmp_path, "outputs/b.conf", """\
        [OUTPUT]
            Name        kinesis
            Match       audit
            stream_arn  arn:aws:kinesis:us-west-2:123456789012:stream/audit
            aggregation true
        [OUTPUT]
            Name  stdout
            Match *
            anything goes
        """)
    write(tmp_path, "outputs/nested.conf", "@INCLUDE outputs/a.conf\n")  # relative to the main file
    main = write(tmp_path, "fluent-bit.conf", """\
        @SET STREAM=app-logs
        [SERVICE]
            Flush 1
        # a comment
        [INPUT]
            Name dummy
        @INCLUDE outputs/b.conf
        @INCLUDE outputs/n*.conf
        """)
    code, out = check(main)
    assert code == 0, out
    assert "OK: 2 kinesis output(s), 0 error(s)" in out
    assert f"{tmp_path / 'outputs/a.conf'}:1: output kinesis, match app.*" in out
    assert "    stream                             app-logs\n" in out
    assert "    region                             eu-west-1\n" in out
    assert "    partition_key                      kubernetes->pod_name\n" in out
    assert "    region                             us-west-2  (derived)\n" in out
    assert "    aggregation                        true\n" in out
    assert "max_records_per_request            500  (default)" in out


def test_yaml_with_env_includes_and_processors(tmp_path):
    write(tmp_path, "more.yaml", """\
        pipeline:
          outputs:
            - name: kinesis
              match: second
              stream: ${OTHER}
              region: us-east-2
              aggregation: true
              compression: gzip
        """)
    main = write(tmp_path, "fluent-bit.yaml", """\
        env:
          STREAM: from-env-section
          OTHER: other-stream
        includes:
          - more.yaml
        service:
          flush: 1
        pipeline:
          inputs:
            - name: dummy
          outputs:
            - name: kinesis
              match: '*'
              region: ${AWS_REGION}
              stream: ${STREAM}
              retry_limit: 5
              max_records_per_request: 250
              processors:
                logs:
                  - name: content_modifier
            - name: stdout
              match: '*'
        """)
    code, out = check(main)
    assert code == 0, out
    assert "OK: 2 kinesis output(s)" in out
    assert "stream                             from-env-section" in out
    assert "stream                             other-stream" in out
    assert "max_records_per_request            250\n" in out
    assert "compression                        gzip\n" in out


@pytest.mark.parametrize("lines, expected", [
    ("stream s\n    region r\n    partiton_key a", "unknown option 'partiton_key'; did you mean 'partition_key'?"),
    ("stream s\n    region r\n    compression brotli", "option 'compression': 'brotli' is not valid"),
    ("stream s\n    region r\n    max_records_per_request 900", "option 'max_records_per_request': '900'"),
    ("stream s\n    region r\n    metrics_port 70000", "option 'metrics_port': '70000' is not valid"),
    ("stream s\n    region r\n    dry_run maybe", "option 'dry_run': 'maybe' is not a boolean"),
    ("region r", "option 'stream' is required"),
    ("stream ${NOT_SET_ANYWHERE}\n    region r", "option 'stream' is required"),
    ("stream s", "option 'region' is required"),
    ("stream s\n    region r\n    ledger_path /dev/null", "option 'ledger_path': '/dev/null' is not a directory"),
])
def test_errors_fail_with_exit_code_1(tmp_path, lines, expected):
    path = write(tmp_path, "bad.conf", f"[OUTPUT]\n    Name kinesis\n    Match *\n    {lines}\n")
    code, out = check(path, {})
    assert code == 1
    assert f"error: {path}:1: {expected}" in out, out
    assert "FAILED: 1 kinesis output(s)" in out


def test_undefined_variable_warns_and_no_kinesis_output_is_an_error(tmp_path):
    path = write(tmp_path, "a.conf", "[OUTPUT]\n    Name kinesis\n    stream x${NOPE}\n    region r\n")
    code, out = check(path, {})
    assert code == 0 and "warning: " in out and "${NOPE} is not set" in out
    path = write(tmp_path, "d.conf", "[OUTPUT]\n    Name kinesis\n    stream ${S:-fallback}\n    region r\n"
                                     "    partition_key ${EMPTY}\n    compression ${C:-}\n")
    code, out = check(path, {"EMPTY": "", "C": ""})  # empty counts as unset, as in Fluent Bit
    assert code == 0, out
    assert "stream                             fallback\n" in out and out.count("is not set") == 1
    assert "partition_key                      -  (default)" in out
    code, out = check(path, {"S": "given", "C": "gzip"})
    assert "stream                             given\n" in out and "compression                        gzip\n" in out
    path = write(tmp_path, "b.conf", "[OUTPUT]\n    Name kinesis_streams\n    stream x\n")
    code, out = check(path, {})
    assert code == 1 and "no [OUTPUT] with name kinesis" in out
    code, out = check(tmp_path / "missing.conf", {})
    assert code == 1 and "cannot read" in out


def test_secrets_are_masked(tmp_path):
    path = write(tmp_path, "s.conf", """\
        [OUTPUT]
            Name kinesis
            stream s
            region r
            access_key_id AKIAEXAMPLEKEYID1234
            secret_access_key VerySecretValue123
            session_token TokenValue456
            external_id ExternalValue789
            http_proxy http://user:ProxyPassword@proxy:3128
        """)
    code, out = check(path, {})
    assert code == 0, out
    for secret in ("AKIAEXAMPLEKEYID1234", "VerySecretValue123", "TokenValue456", "ExternalValue789",
                   "ProxyPassword"):
        assert secret not in out
    assert "secret_access_key                  ****" in out
    assert "http://user:****@proxy:3128" in out


def test_command_line_entry_point(tmp_path):
    path = write(tmp_path, "c.conf", "[OUTPUT]\n    Name kinesis\n    stream s\n    region ${AWS_REGION}\n")
    ok = subprocess.run([sys.executable, "-m", "fluentbit_kinesis.tools.cli", "check", "-c", str(path)],
                        capture_output=True, text=True, env={"AWS_REGION": "us-east-1"}, cwd=ROOT)
    assert ok.returncode == 0 and "region                             us-east-1" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "fluentbit_kinesis.tools.cli", "check", "-c", str(path)],
                         capture_output=True, text=True, env={}, cwd=ROOT)
    assert bad.returncode == 1 and "option 'region' is required" in bad.stdout

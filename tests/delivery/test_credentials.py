"""Credentials and endpoints as users configure them: a shared-file profile,
an assumed role through STS, static keys, a stream ARN and an HTTP proxy.
The front records which access key signed each PutRecords call."""
import http.server
import json
import socketserver
import threading
import urllib.request

from tests.support.harness import base_options, make_chunk, numbered_records

FLB_OK = 1


def delivered(kinesis, stream):
    return sorted(json.loads(d)["log"] for d in kinesis.read_all(stream).data)


def test_profile_from_shared_credentials_file(kinesis, host, tmp_path):
    stream = kinesis.create_stream()
    credentials = tmp_path / "credentials"
    credentials.write_text("[logs]\naws_access_key_id = AKIDPROFILE0001\naws_secret_access_key = s3cr3t\n")
    h = host(env={"AWS_SHARED_CREDENTIALS_FILE": str(credentials)})
    assert h.init(**base_options(kinesis, stream, profile="logs")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    assert kinesis.front.counters.signed_by == {"AKIDPROFILE0001"}
    assert len(delivered(kinesis, stream)) == 5
    assert "s3cr3t" not in h.log()


def test_role_arn_assumed_through_sts_endpoint(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, role_arn="arn:aws:iam::123456789012:role/log-writer",
                                 sts_endpoint=kinesis.url, external_id="ext-secret-42")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(5))) == FLB_OK
    [key] = kinesis.front.counters.signed_by
    assert key != "testing" and key.startswith("ASIA")  # temporary credentials from AssumeRole
    assert len(delivered(kinesis, stream)) == 5
    assert "ext-secret-42" not in h.log()


def test_static_keys_override_the_environment(kinesis, host):
    stream = kinesis.create_stream()
    h = host()
    assert h.init(**base_options(kinesis, stream, access_key_id="AKIDSTATIC0001",
                                 secret_access_key="static-secret")) == FLB_OK
    assert h.flush(make_chunk(numbered_records(3))) == FLB_OK
    assert kinesis.front.counters.signed_by == {"AKIDSTATIC0001"}


def test_stream_arn_instead_of_name(kinesis, host):
    stream = kinesis.create_stream()
    arn = kinesis.client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    h = host()
    options = base_options(kinesis, stream)
    del options["stream"], options["region"]  # the region comes from the ARN
    assert h.init(stream_arn=arn, **options) == FLB_OK
    assert h.flush(make_chunk(numbered_records(4))) == FLB_OK
    assert len(delivered(kinesis, stream)) == 4


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forwarding HTTP proxy: absolute-URI requests are replayed upstream."""
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Proxy.seen.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        with urllib.request.urlopen(urllib.request.Request(self.path, data=body, headers=headers,
                                                           method="POST")) as answer:
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_http_proxy(kinesis, host):
    stream = kinesis.create_stream()
    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        _Proxy.seen.clear()
        h = host()
        assert h.init(**base_options(kinesis, stream,
                                     http_proxy=f"http://127.0.0.1:{proxy.server_address[1]}")) == FLB_OK
        assert h.flush(make_chunk(numbered_records(6))) == FLB_OK
        assert len(delivered(kinesis, stream)) == 6
        assert any(path.startswith(kinesis.url) for path in _Proxy.seen)  # PutRecords went through it
    finally:
        proxy.shutdown()

"""Limits at the edge, through real HTTP: the body cap (413), over-long request lines and headers
(414, 431) and the gateway's own database down (503), all in the error envelope."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.gateway.interface.conftest import ADMIN_KEY, Gateway
from tests.gateway.interface.test_gateway_http_surface import assert_envelope
from tests.support.mall import free_port

KEYS = "/v1/agencies/a/api-keys"


def start(container_factory, config: dict) -> Gateway:
    from mpp_gateway.service import GatewayService

    container_factory(GatewayService, config).start()
    return Gateway(f"http://{config['WEB_SERVER_ADDRESS']}", config)


def raw_exchange(gateway: Gateway, head: str, body: bytes = b"", timeout: float = 5.0):
    """Send ``head`` (and ``body``) on a fresh connection; read one answer within ``timeout``.
    Returns (status, headers, body as JSON or None, seconds taken)."""
    host, port = gateway.config["WEB_SERVER_ADDRESS"].split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        header_part, _, rest = data.partition(b"\r\n\r\n")
        lines = header_part.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    seconds = time.monotonic() - started
    return status, headers, json.loads(rest) if length else None, seconds


def request_head(method: str, path: str, headers: dict) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: mall"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


# -- the body cap -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [("/v1/tickets", None), (KEYS, ADMIN_KEY), ("/v1/webhooks/payments/midtrans", None)],
)
def test_a_declared_body_over_the_cap_answers_413_before_it_is_read(gateway, path, key):
    for declared in (30 * 1024 * 1024, 5 * 1024**3):  # a 30 MB field, a multi-GB body
        headers = {"Content-Type": "application/json", "Content-Length": str(declared)}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        head = request_head("POST", path, headers)
        # only the start of the body is sent: the answer must not wait for the rest
        status, answer_headers, body, seconds = raw_exchange(
            gateway, head, b'{"x": "' + b"a" * 4096
        )
        assert status == 413, body
        assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert body["error"]["details"]["max_bytes"] == 64 * 1024
        assert body["error"]["request_id"] == answer_headers["x-request-id"]
        assert answer_headers["connection"] == "close"  # the rest is not drained
        assert seconds < 2


def test_a_body_under_the_cap_is_read_and_one_over_it_is_refused(
    container_factory, gateway_config, agencies_stand_in
):
    gateway_config["MAX_BODY_BYTES"] = 2048
    gw = start(container_factory, gateway_config)
    body = json.dumps({"role": "officer", "label": "Loket 1"})
    json_headers = {"Content-Type": "application/json"}

    def post(padding: int):  # valid JSON, padded with blanks to the size wanted
        data = (body + " " * padding).encode()
        return gw.request("POST", KEYS, ADMIN_KEY, data=data, headers=dict(json_headers))

    fits = post(2048 - len(body))
    assert fits.status_code == 201, fits.text
    too_big = post(2049 - len(body))
    assert_envelope(too_big, 413, "PAYLOAD_TOO_LARGE")


def chunked(payload: bytes, size: int = 4096) -> bytes:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_read_up_to_the_cap_and_refused_past_it(gateway, agencies_stand_in):
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "Authorization": f"Bearer {ADMIN_KEY}",
    }
    head = request_head("POST", KEYS, headers)
    # a small chunked body is read (werkzeug used to see an empty body without Content-Length)
    small = json.dumps({"role": "officer", "label": "chunked"}).encode()
    status, _, body, _ = raw_exchange(gateway, head, chunked(small))
    assert status == 201, body
    assert body["label"] == "chunked"
    # past the cap, reading stops with 413 (and the connection closes instead of draining)
    big = json.dumps({"role": "officer", "label": "x" * (200 * 1024)}).encode()
    status, answer_headers, body, seconds = raw_exchange(gateway, head, chunked(big))
    assert status == 413, body
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert answer_headers["connection"] == "close"


def test_a_chunked_body_nobody_reads_does_not_hold_the_connection(gateway):
    head = request_head("GET", "/healthz", {"Transfer-Encoding": "chunked"})
    # chunks without an end: draining them to keep the connection would never finish
    status, headers, body, seconds = raw_exchange(gateway, head, b"1000\r\n" + b"z" * 4096)
    assert status == 200 and body == {"status": "ok"}
    assert headers["connection"] == "close"


# -- request line and headers -------------------------------------------------------------------


def test_an_over_long_request_line_answers_414_in_the_envelope(gateway):
    answer = gateway.request("GET", "/v1/tickets/" + "a" * 9000)
    assert_envelope(answer, 414, "URI_TOO_LONG")
    # the server still serves the next connection
    assert gateway.request("GET", "/healthz").status_code == 200


def test_over_large_headers_answer_431_in_the_envelope(gateway):
    one_long = gateway.request("GET", "/healthz", headers={"X-Long": "b" * 9000})
    assert_envelope(one_long, 431, "HEADERS_TOO_LARGE")
    many = {f"X-Header-{i}": "v" for i in range(120)}
    assert_envelope(gateway.request("GET", "/healthz", headers=many), 431, "HEADERS_TOO_LARGE")
    total = {f"X-Big-{i}": "c" * 8000 for i in range(10)}  # each line fits, 80 KB in all
    assert_envelope(gateway.request("GET", "/healthz", headers=total), 431, "HEADERS_TOO_LARGE")


def test_a_malformed_request_line_answers_400_in_the_envelope(gateway):
    status, headers, body, _ = raw_exchange(gateway, "GET /healthz HTTP/9\r\n\r\n")
    assert status in (400, 505)
    assert body["error"]["request_id"] == headers["x-request-id"]
    assert headers["content-type"] == "application/json"


# -- the gateway's database down ----------------------------------------------------------------


def closed_postgres() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/gateway"


@pytest.mark.parametrize("database", ["postgres-closed-port", "postgres-dropped", "sqlite-empty"])
def test_the_gateway_database_down_answers_503_with_retry_after(
    container_factory, gateway_config, pg_url_factory, tmp_path, database
):
    if database == "postgres-closed-port":
        url = closed_postgres()
    elif database == "postgres-dropped":
        from tests.support import infra

        url = pg_url_factory("mpp_gone")
        infra.drop_database(url)
    else:
        url = f"sqlite:///{tmp_path}/never-migrated.db"
    gateway_config["DB_URL"] = url
    gw = start(container_factory, gateway_config)
    answers = [
        gw.request("GET", KEYS, "mpp_some_issued_key"),  # the key lookup
        gw.request("GET", KEYS, ADMIN_KEY),  # the handler's own query
        gw.request(  # the idempotency claim
            "POST", KEYS, ADMIN_KEY, json={"role": "officer"}, headers={"Idempotency-Key": "k1"}
        ),
    ]
    for answer in answers:
        assert_envelope(answer, 503, "DATABASE_UNAVAILABLE")
        assert int(answer.headers["Retry-After"]) >= 1
    assert gw.request("GET", "/healthz").status_code == 200


def test_the_openapi_documents_the_edge_statuses(gateway):
    spec = gateway.request("GET", "/openapi.json").json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"414", "429", "431", "503"} <= statuses, (method, path)
            if method in ("post", "patch"):
                assert "413" in statuses, (method, path)
    assert "Retry-After" in spec["components"]["responses"]["Error503"]["headers"]

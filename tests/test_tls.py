"""daphne's own TLS (``-e ssl:...``) in front of the bridge, with real clients and processes."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.sync.client import connect

from tests.interface import Deployment, deploy, http_json
from tests.processes import ManagedProcess
from tests.redis_server import free_port

# Twisted's ssl: endpoints need pyOpenSSL and service_identity, the twisted[tls] extra.
NEEDS_TLS = 'daphne\'s ssl: endpoints need twisted[tls]: pip install "channels-classic[tls]"'
pytest.importorskip("OpenSSL", reason=NEEDS_TLS)
pytest.importorskip("service_identity", reason=NEEDS_TLS)

pytestmark = pytest.mark.timeout(90)

ROUTING = "tests.project.sockets.channel_routing"
TIMEOUT = 20


@dataclass
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate and nothing else."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cert))
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        return context


def make_certificate(directory: Path) -> Certificate:
    """A fresh self-signed server certificate for ``localhost`` and ``127.0.0.1``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(cert=directory / "cert.pem", key=directory / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def ssl_endpoint(port: int, certificate: Certificate) -> str:
    """daphne's ``-e`` value: a Twisted ssl endpoint (``:`` and ``\\`` escaped in paths)."""

    def escape(path: Path) -> str:
        return str(path).replace("\\", "\\\\").replace(":", "\\:")

    return (
        f"ssl:{port}:interface=127.0.0.1"
        f":privateKey={escape(certificate.key)}:certKey={escape(certificate.cert)}"
    )


def wait_until_listening(daphne: ManagedProcess, port: int) -> None:
    """Wait for daphne's log line for *port* (``start_daphne`` may have consumed it already)."""
    line = f"Listening on TCP address 127.0.0.1:{port}"
    if not any(line in seen for seen in list(daphne.output)):
        daphne.wait_for(line.replace(".", r"\.") + "$", timeout=TIMEOUT)


@dataclass
class TlsServer:
    deployment: Deployment
    tls_port: int
    certificate: Certificate

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}"


def start_tls(certificate: Certificate, redis_url: str, workers: int) -> TlsServer:
    tls_port = free_port()
    deployment = deploy(
        "daphne",
        ROUTING,
        redis_url=redis_url,
        prefix=f"tls-{uuid.uuid4().hex[:12]}:",
        workers=workers,
        daphne_flags=("-e", ssl_endpoint(tls_port, certificate)),
    )
    try:
        wait_until_listening(deployment.processes[0], tls_port)
    except BaseException:
        deployment.stop()
        raise
    return TlsServer(deployment, tls_port, certificate)


@pytest.fixture(scope="module")
def tls_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """daphne listening on a plain port and a TLS port, with one runworker."""
    server = start_tls(make_certificate(tmp_path_factory.mktemp("tls")), redis_url, workers=1)
    try:
        yield server
    finally:
        server.deployment.stop()


def https_get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT, context=context)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# A worker behind daphne's TLS port -------------------------------------------


def test_https_reaches_a_django_view_as_a_secure_request(tls_server: TlsServer) -> None:
    context = tls_server.certificate.client_context()
    status, body = https_get(tls_server.tls_port, "/form/?via=tls", context)
    assert status == 200, body[:500]
    got = json.loads(body)
    assert got["secure"] is True  # request.is_secure(): the message's scheme was "https"
    assert got["get"] == {"via": ["tls"]}
    # The same daphne's plain port, for contrast.
    assert http_json(tls_server.deployment.url + "/form/")["secure"] is False


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_server: TlsServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(tls_server.tls_port, "/hello/", ssl.create_default_context())


def test_wss_echo_round_trip(tls_server: TlsServer) -> None:
    context = tls_server.certificate.client_context()
    with connect(tls_server.wss_url + "/ws/echo/", ssl=context, open_timeout=TIMEOUT) as ws:
        ws.send("hello over tls")
        assert ws.recv(timeout=TIMEOUT) == "hello over tls"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=TIMEOUT) == b"yranib\x01\x00"
        big = "x" * 200_000  # many TLS records each way
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big


def test_plain_http_to_the_tls_port_gets_no_http_response(tls_server: TlsServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                response += chunk
    assert not response.startswith(b"HTTP/"), response[:200]
    assert b"Hello world" not in response


# The messages themselves: daphne with no worker, the test plays the worker -------


@pytest.fixture(scope="module")
def bare_tls_server(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    """daphne's TLS port with no worker: the test reads and answers the messages itself."""
    server = start_tls(make_certificate(tmp_path_factory.mktemp("tls")), redis_url, workers=0)
    try:
        yield server
    finally:
        server.deployment.stop()


def test_the_http_request_message_says_https(bare_tls_server: TlsServer) -> None:
    layer = bare_tls_server.deployment.layer
    context = bare_tls_server.certificate.client_context()
    with ThreadPoolExecutor(1) as pool:
        request = pool.submit(https_get, bare_tls_server.tls_port, "/raw/", context)
        name, message = layer.receive(["http.request"], block=True, timeout=TIMEOUT)
        assert name == "http.request", "no http.request arrived"
        layer.send(message["reply_channel"], {"status": 200, "headers": [], "content": b"seen"})
        assert request.result(TIMEOUT) == (200, b"seen")
    assert message["scheme"] == "https"
    assert message["path"] == "/raw/"
    assert message["server"] == ["127.0.0.1", bare_tls_server.tls_port]


@pytest.mark.parametrize("secure", [True, False], ids=["wss", "ws"])
def test_the_websocket_connect_message_says_wss_only_over_tls(
    bare_tls_server: TlsServer, secure: bool
) -> None:
    layer = bare_tls_server.deployment.layer
    if secure:
        url, options = (
            bare_tls_server.wss_url,
            {"ssl": bare_tls_server.certificate.client_context()},
        )
        port = bare_tls_server.tls_port
    else:
        url, options = bare_tls_server.deployment.ws_url, {}
        port = int(url.rsplit(":", 1)[1])

    def handshake() -> int:
        with connect(url + "/ws/raw/", open_timeout=TIMEOUT, **options) as ws:
            assert ws.response is not None
            return ws.response.status_code

    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(handshake)
        name, message = layer.receive(["websocket.connect"], block=True, timeout=TIMEOUT)
        assert name == "websocket.connect", "no websocket.connect arrived"
        layer.send(message["reply_channel"], {"accept": True})
        assert opening.result(TIMEOUT) == 101
    assert message["path"] == "/ws/raw/"
    assert message["server"] == ["127.0.0.1", port]
    # daphne 4 leaves the scheme out of WebSocket scopes (django/daphne#538):
    # the bridge finds TLS on the connection's transport.
    assert message["scheme"] == ("wss" if secure else "ws")

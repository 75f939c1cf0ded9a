"""CoT over TLS on loopback, with a self-signed certificate and a client CA made here
(cryptography): events arrive over TLS, plain TCP and unknown clients are refused when a CA is
set, and bad settings are refused before anything listens."""

from __future__ import annotations

import contextlib
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deconfliction.feeds.servers import FeedConfig, FeedServers
from deconfliction.tracks.picture import IntakeRules, TrackPicture
from tests.conftest import FakeClock
from tests.feeds.support import RunningFeeds, cot_event, wait_until


def _certificate(
    path: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path, Path]:
    """A certificate for ``name`` (signed by ``issuer``, else self-signed and a CA) and its key,
    written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_path, key_path = path / f"{name}.pem", path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key, cert_path, key_path


def _send_tls(port: int, context: ssl.SSLContext, data: bytes) -> None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(data)


def test_cot_over_tls_and_client_certificates(tmp_path: Path) -> None:
    server_cert, _, server_pem, server_key = _certificate(tmp_path, "server", None)
    ca = _certificate(tmp_path, "party-ca", None)
    _, _, client_pem, client_key = _certificate(tmp_path, "client", (ca[0], ca[1]))
    _, _, stranger_pem, stranger_key = _certificate(tmp_path, "stranger", None)
    config = FeedConfig.parse(f"cot-tcp:0:IL:cert={server_pem}:key={server_key}:ca={ca[2]}")
    picture = TrackPicture()
    servers = FeedServers([config], picture, IntakeRules(), FakeClock())
    with RunningFeeds(servers):
        port = servers.port(config.label)
        trusting = ssl.create_default_context(cafile=str(server_pem))
        trusting.load_cert_chain(client_pem, client_key)
        _send_tls(port, trusting, cot_event("a", 34.1) + cot_event("b", 34.2))
        wait_until(lambda: len(picture) == 2)
        # A client without a certificate of the party's CA, and plain TCP: nothing gets in
        # (TLS 1.3 may let the client finish its side before the server refuses it).
        stranger = ssl.create_default_context(cafile=str(server_pem))
        stranger.load_cert_chain(stranger_pem, stranger_key)
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            _send_tls(port, stranger, cot_event("c", 34.3))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(cot_event("d", 34.4))
        # The trusted client again, after them: once its event is in, theirs would be too.
        _send_tls(port, trusting, cot_event("e", 34.5))
        wait_until(lambda: picture.get("IL/e") is not None)
        status = servers.status()[0]
    assert [s.key for s in picture.snapshot()] == ["IL/a", "IL/b", "IL/e"]
    assert (status.accepted, status.dropped) == (3, {})
    assert server_cert.subject.rfc4514_string() == "CN=server"


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cot-tcp"):
        FeedConfig.parse("cot-udp:6969:IL:cert=a.pem:key=a.key")
    with pytest.raises(ValueError, match="both cert= and key="):
        FeedConfig.parse("cot-tcp:8089:IL:cert=a.pem")
    with pytest.raises(ValueError, match="unknown option"):
        FeedConfig.parse("cot-tcp:8089:IL:pass=secret")
    missing = FeedConfig.parse(f"cot-tcp:8089:IL:cert={tmp_path}/no.pem:key={tmp_path}/no.key")
    with pytest.raises(ValueError, match="TLS files"):
        missing.ssl_context()
    # The SBS-1 offset still parses next to the new options.
    assert FeedConfig.parse("sbs1:30003:TR:+03:00").utc_offset == timedelta(hours=3)

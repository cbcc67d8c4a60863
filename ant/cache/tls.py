"""The cache's serving certificate: given, or self-signed like kube-apiserver's --cert-dir.

With ``--tls-cert-file``/``--tls-private-key-file`` the cache serves that pair (e.g. one
signed by the cluster CA, or by cert-manager). Without, it makes a self-signed
certificate for its host names in a directory (kept and reused while it still covers
them and is valid for another day): clients then trust that certificate itself
(``ANT_CACHE_CA``). Self-signing needs the ``cryptography`` package.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from ant.errors import ConfigError

CERT_NAME = "ant-cache.crt"
KEY_NAME = "ant-cache.key"


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2+ with the given certificate chain and key; ConfigError if they don't load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot load the serving certificate {cert_file} / key {key_file}: {e}",
            hint="pass a PEM certificate and its key",
        ) from e
    # HTTP/1.1 only; advertising it lets clients that ask for ALPN settle at once.
    context.set_alpn_protocols(["http/1.1"])
    return context


def self_signed(cert_dir: Path, hosts: Sequence[str]) -> tuple[str, str]:
    """A self-signed certificate for ``hosts`` in ``cert_dir`` (made or reused)."""
    cert_path, key_path = cert_dir / CERT_NAME, cert_dir / KEY_NAME
    if _reusable(cert_path, key_path, hosts):
        return str(cert_path), str(key_path)
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:
        raise ConfigError(
            "no serving certificate given and the `cryptography` package is not installed",
            hint="pass --tls-cert-file and --tls-private-key-file, or pip install cryptography",
        ) from e
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ant-cache")])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return str(cert_path), str(key_path)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _reusable(cert_path: Path, key_path: Path, hosts: Sequence[str]) -> bool:
    if not (os.path.isfile(cert_path) and os.path.isfile(key_path)):
        return False
    try:
        from cryptography import x509
    except ImportError:
        return True  # cannot inspect it; it was made for this purpose
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    names = {str(n) for n in sans.get_values_for_type(x509.DNSName)}
    names |= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        days=1
    )
    return fresh and set(hosts) <= names

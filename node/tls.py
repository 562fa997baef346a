"""TLS contexts for every connection the node takes or makes, per DICOM's non-downgrading
BCP 195 profile (PS3.15 B.9; RFC 9325): TLS 1.2 or newer, for TLS 1.2 only ECDHE key
exchange with AES-GCM, no compression, no renegotiation, and peers' certificates checked
against the site's CA bundle.

The contexts follow their files: each use checks (at most once a second) whether the
certificate, key or CA bundle changed, and a changed set is loaded for the next connection.
A set that does not load (a certificate written before its key) leaves the previous context
in use until it does, so a renewal never takes the node off the air.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.config import Settings
from node.errors import ConfigError

logger = logging.getLogger(__name__)

# RFC 9325 4.2's TLS 1.2 suites, ECDSA and RSA certificates alike; TLS 1.3's are all AEAD.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
)
RELOAD_CHECK_S = 1.0


@dataclass(frozen=True)
class TLSFiles:
    certificate: Path
    private_key: Path
    ca_file: Path
    require_client_certificate: bool = True

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        return self.certificate, self.private_key, self.ca_file


def _bcp195(purpose: ssl.Purpose, files: TLSFiles) -> ssl.SSLContext:
    server = purpose is ssl.Purpose.CLIENT_AUTH
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if server:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(files.certificate, files.private_key)
    context.load_verify_locations(cafile=files.ca_file)
    return context


def dicom_server_context(files: TLSFiles) -> ssl.SSLContext:
    """The Storage SCP's: a client certificate from the CA bundle, required by default."""
    context = _bcp195(ssl.Purpose.CLIENT_AUTH, files)
    context.verify_mode = (
        ssl.CERT_REQUIRED if files.require_client_certificate else ssl.CERT_OPTIONAL
    )
    return context


class _ReportingSocket(ssl.SSLSocket):
    """Keeps why a handshake failed, by the name called: pynetdicom's connect logs it and
    goes on as if the peer were unreachable."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (ssl.SSLError, OSError) as exc:
            with _FAILURES_LOCK:
                _FAILURES[self.server_hostname or ""] = describe(exc)
            self.close()  # of no use now, and pynetdicom does not close a reset socket
            raise


_FAILURES: dict[str, str] = {}
_FAILURES_LOCK = threading.Lock()


def handshake_failure(server_hostname: str) -> str | None:
    """Why the last TLS handshake with this name failed (and forget it); None if none did."""
    with _FAILURES_LOCK:
        return _FAILURES.pop(server_hostname, None)


def describe(exc: BaseException) -> str:
    """A TLS failure in words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not accepted: {exc.verify_message}"
    return f"TLS handshake failed: {_why(exc)}"


def client_context(files: TLSFiles) -> ssl.SSLContext:
    """Calls the node makes: the server's certificate must chain to the CA bundle and carry
    the name it is called by; the node shows its own certificate."""
    context = _bcp195(ssl.Purpose.SERVER_AUTH, files)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.sslsocket_class = _ReportingSocket
    return context


def https_server_context(files: TLSFiles) -> ssl.SSLContext:
    """The monitoring endpoint's: no client certificate asked (a scraper or a health probe)."""
    context = _bcp195(ssl.Purpose.CLIENT_AUTH, files)
    context.verify_mode = ssl.CERT_NONE
    return context


def _signature(paths: Iterable[Path]) -> tuple[tuple[int, int, int], ...]:
    found = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            found.append((0, 0, 0))
        else:
            found.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(found)


class ReloadingContext:
    """An SSLContext built from files, rebuilt when they change."""

    def __init__(
        self, name: str, build: Callable[[TLSFiles], ssl.SSLContext], files: TLSFiles
    ) -> None:
        self.name = name
        self._build = build
        self._files = files
        self._lock = threading.Lock()
        self._signature = _signature(files.paths)
        try:
            self._context = build(files)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"[tls] cannot load the {name} TLS context: {_why(exc)}") from exc
        self._checked = time.monotonic()

    def __call__(self) -> ssl.SSLContext:
        """The current context: the files' as they are now, or the last set that loaded."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= RELOAD_CHECK_S:
                self._checked = now
                signature = _signature(self._files.paths)
                if signature != self._signature:
                    self._reload(signature)
            return self._context

    def _reload(self, signature: tuple[tuple[int, int, int], ...]) -> None:
        try:
            self._context = self._build(self._files)
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.warning(
                "changed TLS files do not load for the %s context (%s); the previous "
                "certificate stays in use",
                self.name,
                _why(exc),
            )
            return
        self._signature = signature
        logger.info("TLS certificate files changed: %s context reloaded", self.name)


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc)


class SiteTLS:
    """The node's certificate, key and CA bundle as the contexts each kind of connection
    uses; each follows the files."""

    def __init__(self, files: TLSFiles) -> None:
        self.files = files
        self.dicom_server = ReloadingContext("DICOM server", dicom_server_context, files)
        self.client = ReloadingContext("client", client_context, files)
        self.https_server = ReloadingContext("HTTPS server", https_server_context, files)


def site_tls(settings: Settings) -> SiteTLS | None:
    """The configured TLS, loaded (ConfigError when a file does not load); None without."""
    tls = settings.tls
    if not tls.enabled:
        return None
    return SiteTLS(
        TLSFiles(
            settings.path(tls.certificate),
            settings.path(tls.private_key),
            settings.path(tls.ca_file),
            tls.require_client_certificate,
        )
    )


def certificate_names(certificate: dict[str, Any]) -> tuple[str, ...]:
    """Subject CNs, SAN DNS names and SAN IP addresses of a verified peer certificate (the
    dict SSLSocket.getpeercert() returns)."""
    names: list[str] = []
    for rdn in certificate.get("subject", ()):
        names += [value for key, value in rdn if key == "commonName"]
    for kind, value in certificate.get("subjectAltName", ()):
        if kind in {"DNS", "IP Address"}:
            names.append(value.strip())
    return tuple(dict.fromkeys(names))  # a CN repeated as a SAN once


def carries(names: Iterable[str], identity: str) -> bool:
    """Whether a certificate with these names is ``identity``'s: a host name compared
    without case, an IP address as an address; no wildcards."""
    wanted = _as_ip(identity)
    for name in names:
        if wanted is not None:
            if _as_ip(name) == wanted:
                return True
        elif name.lower().rstrip(".") == identity.lower().rstrip("."):
            return True
    return False


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None

"""A site CA and certificates made with the openssl command line when a test or a benchmark
runs (nothing is committed): the node's, peers', one from another CA, an expired and a
not-yet-valid one.

Keys are EC P-256 (quick to make). Each certificate is written as NAME.crt and NAME.key
into its CA's folder."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.tools import find_tool

CA_CONFIG = """\
[ca]
default_ca = site
[site]
dir = {folder}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[anything]
commonName = supplied
"""


@dataclass(frozen=True)
class Cert:
    certificate: Path
    key: Path


class Pki:
    """One CA in ``folder``, issuing certificates beside it."""

    def __init__(self, folder: Path, name: str = "site-ca") -> None:
        self.folder = folder
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = Cert(folder / f"{name}.crt", folder / f"{name}.key")
        _openssl(
            "req", "-x509", *_ec_key(), "-keyout", str(self.ca.key), "-out",
            str(self.ca.certificate), "-subj", f"/CN={name}", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        (folder / "issued").mkdir(exist_ok=True)
        (folder / "index.txt").write_text("")
        (folder / "serial").write_text("1000\n")
        self.config = folder / "ca.cnf"
        self.config.write_text(CA_CONFIG.format(folder=folder))

    def issue(
        self,
        name: str,
        common_name: str,
        alt_names: tuple[str, ...] = (),
        *,
        start: str | None = None,
        end: str | None = None,
    ) -> Cert:
        """A certificate for ``common_name`` with subjectAltName entries such as
        "DNS:localhost" or "IP:127.0.0.1"; ``start``/``end`` (YYYYMMDDHHMMSSZ) make one that
        is not valid now."""
        cert = Cert(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        csr = self.folder / f"{name}.csr"
        extensions = ["-addext", "basicConstraints=CA:FALSE"]
        if alt_names:
            extensions += ["-addext", f"subjectAltName={','.join(alt_names)}"]
        _openssl(
            "req", "-new", *_ec_key(), "-keyout", str(cert.key), "-out", str(csr),
            "-subj", f"/CN={common_name}", *extensions,
        )  # fmt: skip
        dates = ["-startdate", start or "20200101000000Z", "-enddate", end or "20991231000000Z"]
        issued = self.folder / f"{name}.new"
        _openssl(
            "ca", "-batch", "-config", str(self.config), "-cert", str(self.ca.certificate),
            "-keyfile", str(self.ca.key), "-notext", *dates, "-in", str(csr), "-out", str(issued),
        )  # fmt: skip
        issued.replace(cert.certificate)
        return cert


def _ec_key() -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _openssl(*args: str) -> None:
    result = subprocess.run(
        [find_tool("openssl"), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"openssl {args[0]}: {result.stderr}"


@dataclass(frozen=True)
class SitePki:
    """What the TLS tests use: the site CA; the node's certificate; two modalities'; a PACS's
    (server and client, also Orthanc's); modality A's name from another CA, expired and not
    yet valid; the PACS's name from another CA, and that CA."""

    ca: Cert
    node: Cert
    modality_a: Cert
    modality_b: Cert
    pacs: Cert
    foreign: Cert
    expired: Cert
    not_yet_valid: Cert
    foreign_pacs: Cert
    foreign_ca: Cert
    pki: Pki


LOOPBACK = ("DNS:localhost", "IP:127.0.0.1")
A_NAMES = ("modality-a.test", ("DNS:modality-a.test",))
PAST = ("20200101000000Z", "20210101000000Z")
FUTURE = ("20980101000000Z", "20991231000000Z")


def make_site_pki(folder: Path) -> SitePki:
    site = Pki(folder / "site", "site-ca")
    other = Pki(folder / "other", "other-ca")
    return SitePki(
        ca=site.ca,
        node=site.issue("node", "breastnode.test", ("DNS:breastnode.test", *LOOPBACK)),
        modality_a=site.issue("modality-a", *A_NAMES),
        modality_b=site.issue("modality-b", "modality-b.test", ("DNS:modality-b.test",)),
        pacs=site.issue("pacs", "pacs.test", ("DNS:pacs.test", *LOOPBACK)),
        foreign=other.issue("modality-a", *A_NAMES),
        expired=site.issue("expired", *A_NAMES, start=PAST[0], end=PAST[1]),
        not_yet_valid=site.issue("future", *A_NAMES, start=FUTURE[0], end=FUTURE[1]),
        foreign_pacs=other.issue("pacs", "pacs.test", ("DNS:pacs.test", *LOOPBACK)),
        foreign_ca=other.ca,
        pki=site,
    )


def dcmtk_tls(cert: Cert | None, ca: Cert) -> list[str]:
    """dcmtk's options for TLS with this certificate (None: anonymous TLS, no certificate),
    checking the other side against ``ca``."""
    identity = ["+tla"] if cert is None else ["+tls", str(cert.key), str(cert.certificate)]
    return [*identity, "+cf", str(ca.certificate)]


def tls_section(
    node: Cert, ca: Cert, *, plain_port: int = 0, handshake_timeout_s: float = 10.0
) -> str:
    """The [tls] section of a node's config.toml."""
    return (
        "[tls]\n"
        f'certificate = "{node.certificate}"\n'
        f'private_key = "{node.key}"\n'
        f'ca_file = "{ca.certificate}"\n'
        f"plain_port = {plain_port}\n"
        f"handshake_timeout_s = {handshake_timeout_s}\n"
    )

"""A real Orthanc (Debian package) on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.network import free_port, port_open, wait_for
from harness.tools import find_tool


@dataclass(frozen=True)
class OrthancTLS:
    """Orthanc's DICOM TLS: its port speaks TLS only, and it calls over TLS the modalities
    listed with UseDicomTls (1.9.0 and later)."""

    certificate: Path
    private_key: Path
    trusted: Path  # the certificates (or CA) it trusts, as one PEM file
    remote_certificate_required: bool = True


@dataclass
class Orthanc:
    folder: Path
    modalities: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    tls: OrthancTLS | None = None
    tls_modalities: frozenset[str] = frozenset()  # names in ``modalities`` called over TLS
    ae_title: str = "ORTHANC"
    sync_storage: bool = True
    always_allow_store: bool = True  # False: only AEs listed in ``modalities`` may store
    extra_config: dict[str, Any] = field(default_factory=dict)  # e.g. the DICOMweb plugin
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Orthanc:
        binary = find_tool("Orthanc")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "BreastNode test Orthanc",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomModalities": {k: self._modality(k, v) for k, v in self.modalities.items()},
            "SyncStorageArea": self.sync_storage,
            "DicomAlwaysAllowStore": self.always_allow_store,
            "DicomCheckModalityHost": not self.always_allow_store,
            "Plugins": [],
            "StableAge": 3600,
        }
        if self.tls is not None:
            config |= {
                "DicomTlsEnabled": True,
                "DicomTlsCertificate": str(self.tls.certificate),
                "DicomTlsPrivateKey": str(self.tls.private_key),
                "DicomTlsTrustedCertificates": str(self.tls.trusted),
                "DicomTlsRemoteCertificateRequired": self.tls.remote_certificate_required,
            }
        config.update(self.extra_config)
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        with (self.folder / "orthanc.log").open("wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen([binary, str(path)], stdout=log, stderr=log)
        wait_for(lambda: port_open(self.http_port) and port_open(self.dicom_port), timeout=60)
        return self

    def _modality(self, name: str, entry: tuple[str, str, int]) -> Any:
        if name not in self.tls_modalities:
            return list(entry)
        ae_title, host, port = entry
        return {"AET": ae_title, "Host": host, "Port": port, "UseDicomTls": True}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=body, method=method
        )
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 loopback
            return json.loads(response.read() or b"null")

    def download(self, instance_id: str) -> bytes:
        """The stored file of an instance (Orthanc's id), as Orthanc keeps it."""
        url = f"http://127.0.0.1:{self.http_port}/instances/{instance_id}/file"
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read()
        return data

    def upload(self, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/instances", path.read_bytes())
        return result

    def store_to(self, modality: str, resources: list[str]) -> dict[str, Any]:
        body = json.dumps({"Resources": resources, "Synchronous": True}).encode()
        result: dict[str, Any] = self.request("POST", f"/modalities/{modality}/store", body)
        return result

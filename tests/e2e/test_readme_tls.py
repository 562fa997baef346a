"""The README's TLS section, run as written: its openssl lines make the site CA and the
certificates, its config.toml lines configure a Storage SCP, its Orthanc options start a real
Orthanc (ports replaced by the test's free ones), and then the node and Orthanc echo each
other over TLS, and the README's echoscu line reaches the node as the modality."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from node.config import Settings, read_settings
from node.dicom.tls import gate_for
from tests.support.cli import breastnode
from tests.support.helpers import REPO, require_tool
from tests.support.orthanc import Orthanc
from tests.support.scp import start_scp

README = (REPO / "README.md").read_text(encoding="utf-8")
TLS_SECTION = README[README.index("### TLS\n") : README.index("### Monitoring\n")]


def block(language: str, after: str = "") -> str:
    """The first ``language`` code block of the README's TLS section after ``after``."""
    text = TLS_SECTION[TLS_SECTION.index(after) :]
    found = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert found, f"no {language} block after {after!r} in the README's TLS section"
    return found.group(1)


def readme_certificates(folder: Path) -> None:
    require_tool("openssl")
    result = subprocess.run(
        ["bash", "-e", "-c", block("sh", "<!-- tls-certificates -->")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("breastnode", "orthanc", "modality"):
        assert f"{name}.crt: OK" in result.stdout


def readme_settings(folder: Path, orthanc_port: int) -> Path:
    values = tomllib.loads(block("toml", "**The node**"))
    for peer in values["peers"]:
        if peer["name"] == "orthanc":
            peer["port"] = orthanc_port
    lines = [
        "[tls]",
        *(f"{key} = {json.dumps(value)}" for key, value in values["tls"].items()),
        "[storage]",
        f"root = {json.dumps(str(folder / 'store'))}",
    ]
    for peer in values["peers"]:
        lines += ["[[peers]]", *(f"{key} = {json.dumps(value)}" for key, value in peer.items())]
    config = folder / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def readme_orthanc_options(tls_folder: Path) -> dict[str, Any]:
    options: dict[str, Any] = json.loads("{" + block("json", "**Orthanc**") + "}")
    for key in ("DicomTlsCertificate", "DicomTlsPrivateKey", "DicomTlsTrustedCertificates"):
        options[key] = str(tls_folder / Path(options[key]).name)
    return options


@pytest.mark.orthanc
def test_the_readme_tls_section_as_written(tmp_path: Path) -> None:
    readme_certificates(tmp_path)
    tls_folder = tmp_path / "tls"
    options = readme_orthanc_options(tls_folder)
    modalities = options.pop("DicomModalities")
    orthanc = Orthanc(tmp_path / "orthanc", extra_config=options)
    orthanc.start()
    try:
        config = readme_settings(tmp_path, orthanc.dicom_port)
        settings = read_settings(config)
        scp = start_scp(
            tmp_path, f"sqlite:///{tmp_path / 'index.sqlite3'}", peers=settings.peers,
            tls=gate_for(settings, None),
        )  # fmt: skip
        try:
            modalities["breastnode"]["Port"] = scp.port
            body = json.dumps(modalities["breastnode"]).encode()
            orthanc.request("PUT", "/modalities/breastnode", body)
            echoed = breastnode(config, "echo", "orthanc")
            assert echoed.returncode == 0, echoed.stderr
            assert "over TLS: status 0x0000" in echoed.stdout
            assert orthanc.request("POST", "/modalities/breastnode/echo", b"{}") == {}
            assert readme_echoscu(settings, scp.port, tls_folder).returncode == 0
        finally:
            scp.scp.stop()
            scp.engine.dispose()
    finally:
        orthanc.stop()


def readme_echoscu(
    settings: Settings, port: int, tls_folder: Path
) -> subprocess.CompletedProcess[str]:
    line = re.search(r"`(echoscu \+tls [^`]*)`", TLS_SECTION.replace("\n", " "))
    assert line, "no echoscu line in the README's TLS section"
    words = shlex.split(line.group(1))
    assert words[-1] == str(settings.node.port)  # the README's node listens on 11112
    words[-1] = str(port)
    words[0] = require_tool("echoscu")
    return subprocess.run(
        words, cwd=tls_folder, capture_output=True, text=True, timeout=30, check=False
    )

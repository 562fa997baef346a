"""OHIF, the prebuilt viewer from the npm registry (`@ohif/app`'s `dist/`), served in front of
a real Orthanc's DICOMweb plugin, and opened in Debian's headless Chromium through Playwright.

One origin serves both the viewer and `/dicom-web/` (proxied to Orthanc), as a hospital's
reverse proxy would, so the browser needs no CORS exceptions. `make test` fetches the viewer
(`make viewer-deps`); without it, or without Chromium, the viewer tests skip.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import mimetypes
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.runtime.monitoring import respond
from tests.support.helpers import IN_CI, REPO, free_port

OHIF_VERSION = "3.13.2"
OHIF_DIST = REPO / ".cache" / f"ohif-{OHIF_VERSION}" / "package" / "dist"
CHROMIUM = Path("/usr/bin/chromium")

APP_CONFIG = """window.config = {
  routerBasename: null,
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'orthanc',
  investigationalUseDialog: { option: 'never' },
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'orthanc',
    configuration: {
      friendlyName: 'Orthanc (BreastNode test)',
      name: 'orthanc',
      wadoUriRoot: '/wado',
      qidoRoot: '/dicom-web',
      wadoRoot: '/dicom-web',
      qidoSupportsIncludeField: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true, relativeResolution: 'studies' },
      omitQuotationForMultipartRequest: true,
    },
  }],
};
"""


def require_viewer() -> tuple[Path, Path]:
    """The OHIF build and Chromium; locally a skip saying what is missing, in CI a failure."""
    missing = None
    if not (OHIF_DIST / "index.html").is_file():
        missing = f"OHIF {OHIF_VERSION} is not fetched (make viewer-deps)"
    elif not CHROMIUM.is_file():
        missing = "Chromium is not installed (make viewer-deps, as root)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (make test-deps)"
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    return OHIF_DIST, CHROMIUM


def fetch_ohif(destination: Path = OHIF_DIST.parent.parent) -> None:
    """`npm pack` the prebuilt viewer and unpack it (its dependencies are built in)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch OHIF")
    destination.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(
        [npm, "pack", "--silent", f"@ohif/app@{OHIF_VERSION}"],
        cwd=destination,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    subprocess.run(["tar", "xzf", packed], cwd=destination, check=True)
    (destination / packed).unlink()


class _Handler(http.server.BaseHTTPRequestHandler):
    dist: Path
    orthanc: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(("/dicom-web/", "/wado")):
            self._proxy()
            return
        if path == "/app-config.js":
            respond(self, 200, "application/javascript", APP_CONFIG.encode())
            return
        file = (self.dist / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.dist) or not file.is_file():
            file = self.dist / "index.html"  # the viewer's own routes (/viewer, /)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if file.suffix == ".wasm":
            kind = "application/wasm"
        respond(self, 200, kind, file.read_bytes())

    def _proxy(self) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() in {"accept", "range"}}
        request = urllib.request.Request(self.orthanc + self.path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 loopback
                respond(self, response.status, response.headers["Content-Type"], response.read())
        except urllib.error.HTTPError as error:
            respond(
                self, error.code, error.headers.get("Content-Type") or "text/plain", error.read()
            )


@contextmanager
def serve_ohif(orthanc_http_port: int) -> Iterator[str]:
    """The viewer on a free loopback port, with `/dicom-web/` going to Orthanc; yields its URL."""
    dist, _ = require_viewer()
    handler = type(
        "Handler",
        (_Handler,),
        {"dist": dist.resolve(), "orthanc": f"http://127.0.0.1:{orthanc_http_port}"},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dicomweb_plugin_config() -> dict[str, Any]:
    """Orthanc settings that load Debian's DICOMweb plugin at `/dicom-web/`."""
    plugin = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
    if not plugin.exists():
        message = "Orthanc's DICOMweb plugin is not installed (Debian orthanc-dicomweb)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return {"Plugins": [str(plugin)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}


def console_lines(messages: list[str]) -> str:
    return json.dumps(messages[-40:], indent=1)

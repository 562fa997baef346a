"""Orthanc for the tests: the harness's, skipped locally (failed in CI) when not installed."""

from __future__ import annotations

from harness.orthanc import Orthanc as HarnessOrthanc
from tests.support.helpers import require_tool


class Orthanc(HarnessOrthanc):
    def start(self) -> Orthanc:
        require_tool("Orthanc")
        super().start()
        return self

"""The site PKI of harness.pki for the tests: one per test process, skipped locally (failed
in CI) without openssl."""

from __future__ import annotations

import pytest

from harness.pki import Cert as Cert
from harness.pki import SitePki as SitePki
from harness.pki import dcmtk_tls as dcmtk_tls
from harness.pki import make_site_pki
from harness.pki import tls_section as tls_section
from tests.support.helpers import require_tool


@pytest.fixture(scope="session")
def site_pki(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    """One site PKI per test process; tests that change a file copy it first."""
    require_tool("openssl")
    return make_site_pki(tmp_path_factory.mktemp("pki"))

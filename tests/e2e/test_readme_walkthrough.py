"""The README's walkthrough, run as written: the node started from the repository's own
``config.toml`` (only ports, the store and the model files changed through the environment,
as an administrator would), an Orthanc with no modalities, then the README's shell lines
(addresses and ports replaced by the test's free ones): register the node in Orthanc, upload
a sample study, push it, and see the node's result series in the study."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import REPO, NodeProcess, free_port, require_tool, wait_for
from tests.support.orthanc import Orthanc


def readme_block(marker: str) -> list[str]:
    """The shell lines of the code block that follows ``<!-- marker -->`` in the README."""
    text = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, re.S)
    assert found, f"the README has no {marker} block"
    return [line for line in found.group(1).splitlines() if line.strip()]


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    pacs = Orthanc(tmp_path / "orthanc", {})  # the walkthrough registers the node itself
    pacs.start()
    yield pacs
    pacs.stop()


@pytest.mark.orthanc
def test_the_readme_walkthrough_brings_results_into_orthanc(
    orthanc: Orthanc,
    demo_weights: Path,
    demo_mri_weights: Path,
    demo_density_weights: Path,
    tmp_path: Path,
    run_logs: Path,
) -> None:
    require_tool("curl")
    work = tmp_path / "checkout"  # stands for the repository: its .venv and config.toml
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    shutil.copy(REPO / "config.toml", work / "config.toml")
    node_port = free_port()
    peers = [  # config.toml's peer "orthanc", at the test Orthanc's DICOM port
        {"name": "orthanc", "ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc.dicom_port}
    ]
    node = NodeProcess(
        config=work / "config.toml",
        root=work / "var",
        port=node_port,
        log=run_logs / "walkthrough-node.log",
        env={
            "BREASTNODE_NODE__PORT": str(node_port),
            "BREASTNODE_PEERS": json.dumps(peers),
            "BREASTNODE_MODELS__MAMMOGRAPHY": str(demo_weights),
            "BREASTNODE_MODELS__MRI": str(demo_mri_weights),
            "BREASTNODE_MODELS__DENSITY": str(demo_density_weights),
            "BREASTNODE_MODELS__DEVICE": "cpu",
            "BREASTNODE_METRICS__PORT": "0",
        },
    ).start(timeout=60)
    try:

        def local(line: str) -> str:
            line = line.replace("http://localhost:8042", f"http://127.0.0.1:{orthanc.http_port}")
            return line.replace('"Port": 11112', f'"Port": {node_port}')

        def shell(lines: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
            script = "set -e -o pipefail\n" + "\n".join(local(line) for line in lines)
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=300,
                env=os.environ | (env or {}),
            )
            assert done.returncode == 0 or not check, done.stderr
            return done.stdout

        [register] = readme_block("walkthrough-setup")
        shell([register])
        assert orthanc.request("GET", "/modalities") == ["breastnode"]

        upload, push, see = readme_block("walkthrough")
        out = shell([upload, 'echo "$STUDY"'])
        study = out.splitlines()[-1]
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}", study), out
        assert len(orthanc.request("GET", f"/studies/{study}/instances")) == 4
        pushed = json.loads(shell([push], {"STUDY": study}))
        assert pushed.get("FailedInstancesCount", 0) == 0 and pushed["InstancesCount"] == 4

        def series() -> list[str]:
            return shell([see], {"STUDY": study}, check=False).splitlines()

        # the sample's series, the two SRs, and an overlay series per breast and view
        wait_for(lambda: len(series()) >= 7, timeout=180)
        listed = series()
        results = [line for line in listed if "NOT FOR CLINICAL USE" in line]
        assert len(listed) == 7 and len(results) == 6, listed
        for view in ("R CC", "R MLO", "L CC", "L MLO"):
            assert sum(f"HEATMAP {view} " in line for line in results) == 1, listed
    finally:
        node.stop()

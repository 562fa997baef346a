"""`breastnode serve` as a subprocess against dcmtk's echoscu and storescu.

Inputs in every common transfer syntax (made by the tests with pydicom's encoders and
dcmtk's converters) must come out of the store byte for byte as they went in.
"""

from __future__ import annotations

import json
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless
from pynetdicom import AE

from models.synthetic import SyntheticPatient, mammogram, mr_slice, write
from node.dicom.sop_classes import ACCEPTED_STORAGE, ACCEPTED_TRANSFER_SYNTAXES
from tests.conftest import NodeFactory
from tests.support.helpers import dataset_bytes, echoscu, require_tool, storescu_command


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def dcmtk_convert(tool: str, *options: str) -> Callable[[Path, Path], None]:
    def convert(source: Path, target: Path) -> None:
        result = run(require_tool(tool), *options, str(source), str(target))
        assert result.returncode == 0, result.stderr

    return convert


def pydicom_compress(syntax: str) -> Callable[[Path, Path], None]:
    def convert(source: Path, target: Path) -> None:
        ds = dcmread(source)
        ds.compress(syntax)
        ds.save_as(target)

    return convert


def inflate(data: bytes) -> bytes:
    return zlib.decompress(data, wbits=-zlib.MAX_WBITS)


def eight_bit(ds: Dataset) -> Dataset:
    pixels = (ds.pixel_array >> 6).astype(np.uint8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = pixels.tobytes()
    return ds


VARIANTS: dict[str, tuple[Callable[[Path, Path], None], str, bool, str | None]] = {
    # name: (converter, transfer syntax, needs 8-bit input, storescu option proposing it;
    #        None: storescu has no option for it, dcmsend proposes the file's own syntax)
    "explicit-le": (
        lambda s, t: t.write_bytes(s.read_bytes()),
        "1.2.840.10008.1.2.1",
        False,
        "-xe",
    ),
    "implicit-le": (dcmtk_convert("dcmconv", "+ti"), "1.2.840.10008.1.2", False, "-xi"),
    "explicit-be": (dcmtk_convert("dcmconv", "+tb"), "1.2.840.10008.1.2.2", False, "-xb"),
    "deflate": (dcmtk_convert("dcmconv", "+td"), "1.2.840.10008.1.2.1.99", False, "-xd"),
    "rle": (pydicom_compress(RLELossless), "1.2.840.10008.1.2.5", False, "-xr"),
    "jpeg2000-lossless": (
        pydicom_compress(JPEG2000Lossless),
        "1.2.840.10008.1.2.4.90",
        False,
        "-xv",
    ),
    "jpeg-ls-lossless": (pydicom_compress(JPEGLSLossless), "1.2.840.10008.1.2.4.80", False, "-xt"),
    "jpeg-lossless-sv1": (dcmtk_convert("dcmcjpeg", "+e1"), "1.2.840.10008.1.2.4.70", False, "-xs"),
    "jpeg-lossless-p14": (dcmtk_convert("dcmcjpeg", "+el"), "1.2.840.10008.1.2.4.57", False, None),
    "jpeg-baseline": (dcmtk_convert("dcmcjpeg", "+eb"), "1.2.840.10008.1.2.4.50", True, "-xy"),
    "jpeg-extended": (dcmtk_convert("dcmcjpeg", "+ee"), "1.2.840.10008.1.2.4.51", False, "-xx"),
}


def send_as_is(path: Path, port: int, storescu_option: str | None) -> None:
    if storescu_option is None:
        command = [
            require_tool("dcmsend"),
            "-aet",
            "STORESCU",
            "-aec",
            "BREASTNODE",
            "--decompress-never",
            "127.0.0.1",
            str(port),
            str(path),
        ]
    else:
        command = storescu_command(port, [path], "STORESCU", storescu_option)
    result = run(*command)
    assert result.returncode == 0, f"{path.name}: {result.stderr}{result.stdout}"


def test_echoscu(node_factory: NodeFactory) -> None:
    node = node_factory()
    result = echoscu(node.port)
    assert result.returncode == 0, result.stderr
    refused = echoscu(node.port, calling="INTRUDER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stderr + refused.stdout


def test_storescu_inputs_are_stored_byte_identical(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory()
    patient = SyntheticPatient()
    sent: dict[str, tuple[Path, str]] = {}
    for name, (convert, syntax, needs_8bit, option) in VARIANTS.items():
        ds = mammogram(patient, rows=96, columns=80, seed=len(sent))
        if needs_8bit:
            ds = eight_bit(ds)
        source = write(ds, tmp_path / "plain", f"{name}-source.dcm")
        target = tmp_path / "send" / f"{name}.dcm"
        target.parent.mkdir(exist_ok=True)
        convert(source, target)
        sent[name] = (target, syntax)
        assert str(dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID) == syntax
        send_as_is(target, node.port, option)

    for name, (path, syntax) in sent.items():
        ds = dcmread(path, stop_before_pixels=True)
        listing = node.cli("instances", str(ds.StudyInstanceUID), "--json")
        assert listing.returncode == 0, listing.stderr
        [row] = [
            r for r in json.loads(listing.stdout) if r["sop_instance_uid"] == ds.SOPInstanceUID
        ]
        assert row["transfer_syntax_uid"] == syntax, name
        stored, original = dataset_bytes(Path(row["path"])), dataset_bytes(path)
        if name == "deflate":
            # dcmtk re-deflates for the wire, so compare what the deflate streams carry.
            stored, original = inflate(stored), inflate(original)
        assert stored == original, name


def test_every_accepted_transfer_syntax_is_negotiated(node_factory: NodeFactory) -> None:
    node = node_factory()
    ae = AE(ae_title="STORESCU")
    contexts = [
        (sop, ts) for sop in list(ACCEPTED_STORAGE)[:2] for ts in ACCEPTED_TRANSFER_SYNTAXES
    ]
    contexts += [(sop, "1.2.840.10008.1.2.1") for sop in ACCEPTED_STORAGE]
    for sop, ts in contexts:
        ae.add_requested_context(sop, ts)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="BREASTNODE")
    assert assoc.is_established
    accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    assoc.release()
    assert accepted == set(contexts)


def test_mr_series_and_cli_listings(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    patient = SyntheticPatient()
    first = mr_slice(patient)
    files = [write(first, tmp_path)] + [
        write(
            mr_slice(
                patient,
                study_uid=first.StudyInstanceUID,
                series_uid=first.SeriesInstanceUID,
                instance_number=n,
                seed=n,
            ),
            tmp_path,
        )
        for n in range(2, 6)
    ]
    result = run(*storescu_command(node.port, files))
    assert result.returncode == 0, result.stderr
    studies = json.loads(node.cli("studies", "--json").stdout)
    [study] = [s for s in studies if s["study_instance_uid"] == first.StudyInstanceUID]
    assert study["instances"] == 5
    assert study["modalities"] == ["MR"]
    assert study["first_received"] <= study["last_received"]
    table = node.cli("studies")
    assert first.StudyInstanceUID in table.stdout
    assert "(1 row)" in table.stdout
    missing = node.cli("instances", "1.2.3.4.5.6.7")
    assert missing.returncode == 1
    assert "no instances stored" in missing.stderr


@pytest.mark.parametrize("with_port", [True, False])
def test_cli_echo_a_real_peer(node_factory: NodeFactory, tmp_path: Path, with_port: bool) -> None:
    from tests.support.helpers import Peer, config_toml, free_port

    storescp = require_tool("storescp")
    port = free_port()
    peer_process = subprocess.Popen(
        [storescp, "-aet", "PEERSCP", "--output-directory", str(tmp_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from tests.support.helpers import port_open, wait_for

        wait_for(lambda: port_open(port))
        config = tmp_path / "echo.toml"
        config.write_text(
            config_toml(
                tmp_path / "s",
                free_port(),
                [Peer("peer-scp", "PEERSCP", "127.0.0.1", port if with_port else None)],
            )
        )
        from tests.support.helpers import NodeProcess

        cli = NodeProcess(config=config, root=tmp_path / "s", port=0, log=tmp_path / "l")
        result = cli.cli("echo", "peer-scp")
        if with_port:
            assert result.returncode == 0, result.stderr
            assert "status 0x0000" in result.stdout
        else:
            assert result.returncode == 1
            assert "no port configured" in result.stderr
        unknown = cli.cli("echo", "nobody")
        assert unknown.returncode == 1
        assert "no peer named 'nobody'" in unknown.stderr
    finally:
        peer_process.terminate()
        peer_process.wait(10)

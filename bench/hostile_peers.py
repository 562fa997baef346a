"""Hostile peers against a running node (one receiver, plain DICOM): what they cost.

1. Tricklers: N connections that send 3 bytes of an association request and then nothing,
   then one C-ECHO with dcmtk's echoscu: its latency (median of --repeats), and how long
   after they sent their bytes the node closed the tricklers.
2. A 0xFFFFFFFF-byte P-DATA announced on an established association, followed by up to
   --stream MiB: the receiver's resident memory before and after, and the bytes it took
   before it aborted.
3. Each raw PDU abuse of the tests: how the node answered.

Figures are printed, never asserted.

    python bench/hostile_peers.py [--tricklers 40 50] [--stream 256]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.network import free_port
from harness.node_process import NodeProcess, Peer, config_toml
from harness.raw_pdu import (
    A_ASSOCIATE_AC,
    P_DATA_TF,
    Answer,
    associate_rq,
    connect,
    pdu,
    read_answer,
)
from harness.tools import find_tool

REQUEST = associate_rq("BREASTNODE", "TESTSCU")
HUGE = 0xFFFFFFFF


def echo_seconds(port: int) -> float:
    command = [find_tool("echoscu"), "-aet", "TESTSCU", "-aec", "BREASTNODE", "127.0.0.1"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, str(port)], capture_output=True, text=True, timeout=120, check=False
    )
    elapsed = time.perf_counter() - started
    return elapsed if result.returncode == 0 else float("nan")


def tricklers(port: int, count: int, repeats: int) -> None:
    socks = []
    for _ in range(count):
        sock = connect(port)
        sock.sendall(REQUEST[:3])
        socks.append(sock)
    sent = time.monotonic()
    echoes = [echo_seconds(port) for _ in range(repeats)]
    dropped = []
    for sock in socks:
        read_answer(sock, timeout=120)
        dropped.append(time.monotonic() - sent)
        sock.close()
    print(
        f"{count} tricklers: C-ECHO median {statistics.median(echoes):.3f} s "
        f"(max {max(echoes):.3f} s, {repeats} tries); all dropped "
        f"{min(dropped):.1f}-{max(dropped):.1f} s after their bytes"
    )


def huge_pdu(port: int, pid: int, stream_mib: int) -> None:
    process = psutil.Process(pid)
    before = process.memory_info().rss
    sent = 0
    answers: list[Answer] = []
    with connect(port, timeout=30) as sock:
        sock.sendall(REQUEST)
        assert read_answer(sock).pdu_type == A_ASSOCIATE_AC
        reader = threading.Thread(target=lambda: answers.append(read_answer(sock, 60)))
        reader.start()
        chunk = bytes(1 << 20)
        try:
            sock.sendall(pdu(P_DATA_TF, b"", length=HUGE))
            while sent < stream_mib << 20:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        reader.join(65)
    after = process.memory_info().rss
    answer = answers[0].words if answers else "no answer"
    print(
        f"0xFFFFFFFF-byte P-DATA announced, {stream_mib} MiB offered: answered {answer}, "
        f"{sent >> 20} MiB taken by the socket buffers; receiver RSS "
        f"{before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    )


def abuses(port: int) -> None:
    noise = bytes([0x42]) + random.Random(17).randbytes(4095)
    cases = {
        "A-ASSOCIATE-RQ announcing 0xFFFFFFFF bytes": pdu(0x01, bytes(4096), length=HUGE),
        "P-DATA of 0xFFFFFFFF bytes before association": pdu(P_DATA_TF, bytes(4096), length=HUGE),
        "unknown PDU type 0x09": pdu(0x09, bytes(16)),
        "4 KiB of random bytes": noise,
        "wrong called AE title": associate_rq("SOMEONE_ELSE", "TESTSCU"),
        "A-ASSOCIATE-RQ cut short, then closed": REQUEST[:40],
    }
    for name, data in cases.items():
        with connect(port) as sock:
            started = time.monotonic()
            sock.sendall(data)
            if name.endswith("closed"):
                sock.shutdown(socket.SHUT_WR)
            answer = read_answer(sock, 60)
            print(f"{name}: {answer.words} after {time.monotonic() - started:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tricklers", type=int, nargs="+", default=[40, 50])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stream", type=int, default=256, help="MiB sent after 0xFFFFFFFF")
    parser.add_argument("--request-timeout", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root, port = Path(folder) / "store", free_port()
        config = Path(folder) / "config.toml"
        config.write_text(config_toml(root, port, [Peer("bench", "TESTSCU")]))
        env = {
            "BREASTNODE_NODE__RECEIVERS": "1",
            "BREASTNODE_NODE__ASSOCIATION_REQUEST_TIMEOUT_S": str(args.request_timeout),
        }
        log = Path(folder) / "node.log"
        node = NodeProcess(config=config, root=root, port=port, log=log, env=env).start(60)
        try:
            assert node.process is not None
            print(f"node: one receiver, association_request_timeout_s = {args.request_timeout}")
            print(f"no tricklers: C-ECHO {echo_seconds(port):.3f} s")
            for count in args.tricklers:
                tricklers(port, count, args.repeats)
            huge_pdu(port, node.process.pid, args.stream)
            abuses(port)
        finally:
            node.stop()


if __name__ == "__main__":
    main()

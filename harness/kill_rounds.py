"""SIGKILL the node again and again while instances stream in, then count what was lost.

Senders on parallel associations send their share of the instances, resending whatever was
not answered 0x0000 (an association the kill broke, a refusal) until every one is
acknowledged, as a modality does. Meanwhile the node is killed with SIGKILL at moments spread
over the stream (after a random number of new acknowledgements, then a random few
milliseconds, so the kill lands anywhere in a transfer, a commit or a reply) and restarted on
the same configuration. At the end the node is stopped and the store and index are compared
with what the senders were told.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from sqlalchemy import text

from harness.node_process import NodeProcess
from storage.db import open_engine

RECONCILED = re.compile(
    r"store reconciled: (\d+) spool file\(s\) and (\d+) unindexed object\(s\) removed"
)


@dataclass
class Tally:
    """What the senders were told, shared by their threads."""

    acknowledged: set[str] = field(default_factory=set)
    attempts: int = 0
    broken: int = 0  # sends that got no status (the association died under them)
    refused: Counter[int] = field(default_factory=Counter)  # non-0x0000 statuses
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


@dataclass(frozen=True)
class KillFigures:
    kills: int
    instances: int
    acknowledged: int
    attempts: int
    broken_sends: int
    refusals: dict[int, int]
    lost: int  # acknowledged, yet not indexed with its file
    duplicates: int  # one SOP Instance UID in two rows or two stored files
    orphan_files: int  # stored files no row names
    rows_without_file: int
    wrong_hashes: int
    spool_left: int
    spool_swept: int  # at the restarts' reconciliations
    unindexed_removed: int
    restart_s: tuple[float, ...]
    wall_s: float

    def summary(self) -> str:
        restarts = sorted(self.restart_s) or [0.0]
        return (
            f"{self.kills} SIGKILLs, {self.instances} instances, {self.acknowledged} "
            f"acknowledged after {self.attempts} sends ({self.broken_sends} broken by a kill, "
            f"refused: {dict(self.refusals) or 'none'}); lost {self.lost}, duplicates "
            f"{self.duplicates}, orphan files {self.orphan_files}, rows without file "
            f"{self.rows_without_file}, wrong hashes {self.wrong_hashes}, spool left "
            f"{self.spool_left}; restarts removed {self.spool_swept} spool file(s) and "
            f"{self.unindexed_removed} unindexed object(s); restart median "
            f"{restarts[len(restarts) // 2]:.2f} s, max {restarts[-1]:.2f} s; "
            f"{self.wall_s:.1f} s in all"
        )


def send_share(port: int, share: Sequence[Dataset], tally: Tally, deadline: float) -> None:
    """Send ``share`` over one association at a time until each is acknowledged."""
    ae = AE(ae_title="STORESCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for context in {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in share}:
        ae.add_requested_context(*context)
    pending = list(share)
    while pending and time.monotonic() < deadline:
        try:
            assoc = ae.associate("127.0.0.1", port, ae_title="BREASTNODE")
        except Exception:  # the node is down or restarting; try again
            assoc = None
        if assoc is None or not assoc.is_established:
            time.sleep(0.05)
            continue
        status: int | None = 0x0000
        while pending and assoc.is_established and status is not None:
            ds = pending[0]
            try:
                status = assoc.send_c_store(ds).get("Status")
            except Exception:  # the kill broke the association mid-send
                status = None
            with tally.lock:
                tally.attempts += 1
                if status == 0x0000:
                    tally.acknowledged.add(str(ds.SOPInstanceUID))
                    pending.pop(0)
                elif status is None:
                    tally.broken += 1
                else:
                    tally.refused[int(status)] += 1
            if status not in (0x0000, None):
                time.sleep(0.1)  # a refusal: retry shortly, as a modality would
        if status is None:  # no answer: the connection is gone (pynetdicom may not know yet)
            assoc.abort()
        elif assoc.is_established:
            assoc.release()


def kill_rounds(
    node: NodeProcess,
    datasets: Sequence[Dataset],
    kills: int,
    database_url: str,
    associations: int = 4,
    seed: int = 0,
    timeout_s: float = 1800,
) -> KillFigures:
    """``node`` is started; it is killed ``kills`` times while ``datasets`` are sent, then
    stopped, and the figures are read from its store and index."""
    rng = random.Random(seed)
    tally = Tally()
    started = time.monotonic()
    deadline = started + timeout_s
    shares = [datasets[n::associations] for n in range(associations)]
    senders = [
        threading.Thread(target=send_share, args=(node.port, share, tally, deadline))
        for share in shares
    ]
    for sender in senders:
        sender.start()
    restarts: list[float] = []
    for done in range(kills):
        per_kill = max(1, (len(datasets) - tally.count()) // (kills - done + 1))
        target = tally.count() + rng.randint(1, 2 * per_kill)
        while tally.count() < target and any(s.is_alive() for s in senders):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        node.kill()
        restart = time.monotonic()
        node.start(timeout=120)
        restarts.append(time.monotonic() - restart)
    for sender in senders:
        sender.join(max(1.0, deadline - time.monotonic()))
    wall = time.monotonic() - started
    node.stop()
    return _figures(node, datasets, database_url, tally, kills, restarts, wall)


def _figures(
    node: NodeProcess,
    datasets: Sequence[Dataset],
    database_url: str,
    tally: Tally,
    kills: int,
    restarts: list[float],
    wall: float,
) -> KillFigures:
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT sop_instance_uid, file_path, sha256 FROM instances")
            ).all()
    finally:
        engine.dispose()
    on_disk = {p.relative_to(node.root).as_posix() for p in (node.root / "objects").glob("*/*")}
    uids_in_files = Counter(
        str(dcmread(node.root / p, stop_before_pixels=True).SOPInstanceUID) for p in on_disk
    )
    row_uids = Counter(str(r.sop_instance_uid) for r in rows)
    with_file = {str(r.sop_instance_uid) for r in rows if (node.root / r.file_path).is_file()}
    wrong = sum(
        1
        for r in rows
        if (node.root / r.file_path).is_file()
        and hashlib.sha256((node.root / r.file_path).read_bytes()).hexdigest() != r.sha256
    )
    reconciled = [tuple(map(int, m)) for m in RECONCILED.findall(node.log.read_text())]
    return KillFigures(
        kills=kills,
        instances=len(datasets),
        acknowledged=len(tally.acknowledged),
        attempts=tally.attempts,
        broken_sends=tally.broken,
        refusals=dict(tally.refused),
        lost=len(tally.acknowledged - with_file),
        duplicates=sum(n - 1 for n in row_uids.values() if n > 1)
        + sum(n - 1 for n in uids_in_files.values() if n > 1),
        orphan_files=len(on_disk - {str(r.file_path) for r in rows}),
        rows_without_file=sum(1 for r in rows if not (node.root / r.file_path).is_file()),
        wrong_hashes=wrong,
        spool_left=sum(1 for _ in (node.root / "spool").iterdir()),
        spool_swept=sum(spool for spool, _ in reconciled),
        unindexed_removed=sum(unindexed for _, unindexed in reconciled),
        restart_s=tuple(restarts),
        wall_s=wall,
    )


def instances_to_send(count: int) -> list[Dataset]:
    """``count`` small MG images (32x32, 2 KiB of pixels) of one synthetic study."""
    from models.synthetic import SyntheticPatient, mammogram

    patient = SyntheticPatient()
    first = mammogram(patient, rows=32, columns=32)
    study = str(first.StudyInstanceUID)
    return [first] + [
        mammogram(patient, study_uid=study, rows=32, columns=32, seed=n) for n in range(1, count)
    ]

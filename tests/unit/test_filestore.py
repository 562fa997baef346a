"""The file store: generated names, atomic commit, digests, sweeping."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from storage.filestore import FileStore


def test_commit_moves_the_file_under_a_generated_name(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "root")
    store.prepare()
    spooled = store.spool_dir / "1.2.840.99999.1.dcm"
    spooled.write_bytes(b"payload")
    digest = store.digest_and_sync(spooled)
    assert digest.sha256 == hashlib.sha256(b"payload").hexdigest()
    assert digest.size == 7
    relative = store.commit(spooled)
    assert not spooled.exists()
    assert re.fullmatch(r"objects/\d{8}/[0-9a-f]{32}\.dcm", relative)
    assert "1.2.840" not in relative
    assert store.path_of(relative).read_bytes() == b"payload"
    assert list(store.stored_objects()) == [relative]
    store.remove(relative)
    assert list(store.stored_objects()) == []


def test_sweep_spool_keeps_only_what_it_is_told(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.prepare()
    keep = store.spool_dir / "rx-live.dcm"
    keep.write_bytes(b"a")
    (store.spool_dir / "rx-dead.dcm").write_bytes(b"b")
    assert store.sweep_spool(keep={keep}) == 1
    assert [p.name for p in store.spool_dir.iterdir()] == ["rx-live.dcm"]

"""SIGKILL after SIGKILL while four associations send: nothing acknowledged is lost.

200 small instances over 4 parallel associations, the senders resending whatever was not
answered 0x0000, the node killed with SIGKILL at moments spread over the stream and
restarted each time (harness.kill_rounds). Then: every acknowledged instance indexed with its
file and the right hash, no SOP Instance stored twice, no file without its row, no row
without its file, an empty spool. The test runs a few kills per database to stay quick;
``bench/kill_rounds.py`` runs the full 50 and prints the figures (docs/RELIABILITY.md).
"""

from __future__ import annotations

from harness.kill_rounds import instances_to_send, kill_rounds
from tests.conftest import NodeFactory
from tests.support.helpers import Peer

KILLS = 6
INSTANCES = 200


def test_sigkills_while_four_associations_send_lose_nothing(
    node_factory: NodeFactory, database_url: str
) -> None:
    external = "" if database_url.startswith("sqlite") else database_url
    node = node_factory([Peer("sender", "STORESCU")], database_url=external, receivers=1)
    index_url = external or f"sqlite:///{node.root / 'index.sqlite3'}"

    figures = kill_rounds(node, instances_to_send(INSTANCES), KILLS, index_url, seed=KILLS)

    print(figures.summary())  # the figures of this run, in the test report
    assert figures.acknowledged == INSTANCES
    assert figures.broken_sends >= KILLS, "the kills must land while instances are in flight"
    assert (
        figures.lost,
        figures.duplicates,
        figures.orphan_files,
        figures.rows_without_file,
        figures.wrong_hashes,
        figures.spool_left,
    ) == (0, 0, 0, 0, 0, 0), figures.summary()

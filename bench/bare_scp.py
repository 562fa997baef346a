"""The baseline: a bare pynetdicom Storage SCP that writes each data set to a file.

No index, no fsync, no checks: what pynetdicom costs on its own. Usage:
``python bench/bare_scp.py PORT FOLDER MAX_PDU``.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from pynetdicom import AE, evt

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
BREAST_TOMOSYNTHESIS = "1.2.840.10008.5.1.4.1.1.13.1.3"


def main() -> None:
    port, folder, max_pdu = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)

    def on_store(event: Any) -> int:
        (folder / f"{uuid.uuid4().hex}.dcm").write_bytes(event.encoded_dataset())
        return 0x0000

    ae = AE(ae_title="BARESCP")
    ae.maximum_pdu_size = max_pdu
    ae.maximum_associations = 16
    for sop_class in (MG_FOR_PRESENTATION, BREAST_TOMOSYNTHESIS):
        ae.add_supported_context(sop_class, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])


if __name__ == "__main__":
    main()

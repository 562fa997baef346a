"""``python -m node`` is the same as the ``breastnode`` command."""

from node.cli import main

raise SystemExit(main())

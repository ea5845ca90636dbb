"""``python -m rnncore``: the same as the ``rnncore`` command."""

from __future__ import annotations

from rnncore.cli import main

raise SystemExit(main())

"""``python -m shopfloor.edge``: the edge runtime's command line."""

from shopfloor.edge.cli import main

raise SystemExit(main())

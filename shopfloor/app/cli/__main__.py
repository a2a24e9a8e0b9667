"""``python -m shopfloor.app.cli``: the ``shopfloor`` console script without the script."""

import sys

from shopfloor.app.cli import main

sys.exit(main())

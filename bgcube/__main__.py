"""``python -m bgcube``: the ``bgcube`` command (see `bgcube.cli`)."""

import sys

from .cli import main

sys.exit(main())

"""``python -m bgcube``: the ``bgcube`` command (see `bgcube.cli`)."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command starts
    print("bgcube: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())

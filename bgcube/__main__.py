"""``python -m bgcube``: the ``bgcube`` command (see `bgcube.cli`)."""

import sys

try:
    from .cli import command
except KeyboardInterrupt:  # Ctrl-C while the command starts
    print("bgcube: interrupted", file=sys.stderr)
    sys.exit(130)

command()

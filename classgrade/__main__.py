"""``python -m classgrade [COMMAND] ...`` (``grade`` by default): see :mod:`classgrade.trusted.cli`."""
import sys

from classgrade.trusted.cli import main

if __name__ == "__main__":
    sys.exit(main())

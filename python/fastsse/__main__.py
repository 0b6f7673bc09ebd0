"""``python -m fastsse``: the same as the ``fastsse`` command."""

import sys

from fastsse.cli import main

if __name__ == "__main__":
    sys.exit(main())

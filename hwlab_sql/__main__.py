"""Run the hwlab-sql command as ``python -m hwlab_sql``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

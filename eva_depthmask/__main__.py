"""``python -m eva_depthmask``: the command line (apps.cli)."""

import sys

from .apps.cli import main

sys.exit(main())

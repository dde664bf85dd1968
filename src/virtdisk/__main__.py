"""``python -m virtdisk``: the ``virtdisk`` command (see :mod:`virtdisk.cli`)."""

import sys

from .cli import main

sys.exit(main())

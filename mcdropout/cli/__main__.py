"""``python -m mcdropout.cli``: the same as the ``mcdropout`` command."""

import sys

from mcdropout.cli import main

sys.exit(main())

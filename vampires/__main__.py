"""``python -m vampires`` is the ``vampires`` command."""

import sys

from vampires.cli.main import main

sys.exit(main())

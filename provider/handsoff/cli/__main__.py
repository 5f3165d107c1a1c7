"""``python -m handsoff.cli``: the same as the `handsoff` command."""

import sys

from handsoff.cli.app import main

sys.exit(main())

"""The `handsoff` command line (console script ``handsoff = handsoff.cli:main``): one module per command.

``registry`` lists the commands; ``app`` parses and runs one; no module imports Airflow at module level.
"""

from handsoff.cli.app import main

__all__ = ["main"]

"""Names with spaces and non-ASCII letters survive the command line."""

import subprocess
import sys
import unittest


class NamesTest(unittest.TestCase):
    def test_unicode_name(self):
        out = subprocess.run(
            [sys.executable, "greeter.py", "Zoë Ångström"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=True,
        ).stdout
        self.assertEqual(out, "Hello, Zoë Ångström!\n")


if __name__ == "__main__":
    unittest.main()

"""Runs the greeter command line as a separate process."""

import subprocess
import sys
import unittest


class CliTest(unittest.TestCase):
    def test_prints_greeting(self):
        out = subprocess.run(
            [sys.executable, "greeter.py", "Ada"], capture_output=True, text=True, check=True
        ).stdout
        self.assertEqual(out, "Hello, Ada!\n")


if __name__ == "__main__":
    unittest.main()

"""The shipped configuration file is valid and used by the command line."""

import json
import subprocess
import sys
import unittest
from pathlib import Path


class ConfigTest(unittest.TestCase):
    def test_config_has_the_expected_keys(self):
        config = json.loads(Path("config/greeter.json").read_text())
        self.assertEqual(set(config), {"greeting", "punctuation"})

    def test_cli_uses_config(self):
        config = json.loads(Path("config/greeter.json").read_text())
        out = subprocess.run(
            [sys.executable, "greeter.py", "--config", "config/greeter.json", "Bo"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.assertEqual(out, f"{config['greeting']}, Bo{config['punctuation']}\n")


if __name__ == "__main__":
    unittest.main()

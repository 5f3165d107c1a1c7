import json
import tempfile
import unittest
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import greeter


class GreetTest(unittest.TestCase):
    def test_default_greeting(self):
        self.assertEqual(greeter.greet("Ada"), "Hello, Ada!")

    def test_blank_name_greets_the_world(self):
        self.assertEqual(greeter.greet("  "), "Hello, world!")

    def test_config_file_overrides_defaults(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "c.json")
            path.write_text(json.dumps({"greeting": "Hi"}))
            config = greeter.load_config(str(path))
        self.assertEqual(greeter.greet("Bo", config), "Hi, Bo!")

    def test_main_prints_greeting(self):
        out = StringIO()
        with redirect_stdout(out):
            self.assertEqual(greeter.main(["Cy"]), 0)
        self.assertEqual(out.getvalue(), "Hello, Cy!\n")

    def test_lambda_handler_greets_the_event_name(self):
        self.assertEqual(greeter.handler({"name": "Di"}), {"greeting": "Hello, Di!"})
        self.assertEqual(greeter.handler(None), {"greeting": "Hello, world!"})


if __name__ == "__main__":
    unittest.main()

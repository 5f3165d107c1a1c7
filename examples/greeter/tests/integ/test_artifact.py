"""Runs the artifact that the pipeline deployed (HANDSOFF_ARTIFACT), not a fresh build."""

import os
import subprocess
import sys
import unittest

ARTIFACT = os.environ.get("HANDSOFF_ARTIFACT", "")


@unittest.skipUnless(ARTIFACT.endswith(".zip"), "HANDSOFF_ARTIFACT is not the greeter zip")
class ArtifactTest(unittest.TestCase):
    def test_zip_runs(self):
        out = subprocess.run([sys.executable, ARTIFACT, "Cy"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout, "Hello, Cy!\n")


if __name__ == "__main__":
    unittest.main()

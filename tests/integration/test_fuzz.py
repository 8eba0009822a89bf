"""The libFuzzer harnesses of tests/fuzz/, each run for a bounded time under
ASan/UBSan by tests/fuzz/run (20 s each by default, two at a time;
SCORELINE_FUZZ_SECONDS overrides). Fails when any harness finds a crash, a
sanitizer report, a leak, a broken invariant or a slow input; skipped when
clang or the libFuzzer runtime (libclang-rt-14-dev) is not installed."""

import glob
import os
import shutil
import subprocess
import sys
import time
import unittest

SOURCE_DIR = os.environ.get(
    "SCORELINE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
RUN = os.path.join(SOURCE_DIR, "tests", "fuzz", "run")


def fuzzer_runtime_missing():
    """A sentence saying what is missing, or None when libFuzzer can be used."""
    clang = shutil.which("clang")
    if not clang:
        return "clang is not installed (apt-get install clang libclang-rt-14-dev)"
    try:
        rtdir = subprocess.run([clang, "-print-runtime-dir"], capture_output=True, text=True,
                               timeout=30).stdout.strip()
        resdir = subprocess.run([clang, "-print-resource-dir"], capture_output=True, text=True,
                                timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return "clang does not run: %s" % e
    found = glob.glob(os.path.join(rtdir, "libclang_rt.fuzzer*.a")) + glob.glob(
        os.path.join(resdir, "lib", "linux", "libclang_rt.fuzzer*.a"))
    if not found:
        return "the libFuzzer runtime is not installed (apt-get install libclang-rt-14-dev)"
    return None


class FuzzTest(unittest.TestCase):

    def test_every_harness_runs_clean_for_its_time(self):
        missing = fuzzer_runtime_missing()
        if missing:
            self.skipTest(missing)
        seconds = os.environ.get("SCORELINE_FUZZ_SECONDS", "20")
        # Objects and run copies go beside the test build, not into the tree.
        bin_dir = os.environ.get("SCORELINE_BIN_DIR")
        build = os.path.join(bin_dir, "fuzz") if bin_dir else os.path.join(SOURCE_DIR, "build-fuzz")
        t0 = time.monotonic()
        r = subprocess.run([RUN, "--seconds", seconds, "--build-dir", build],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        took = time.monotonic() - t0
        sys.stderr.write(r.stdout)
        sys.stderr.write("tests/fuzz/run took %.0f s\n" % took)
        self.assertEqual(r.returncode, 0, "tests/fuzz/run failed:\n" + r.stdout[-4000:])


if __name__ == "__main__":
    unittest.main()

"""The short form of the chaos test (tests/chaos/chaos.py with its defaults):
real Redis (AOF), one broker, three workers, 2,000 jobs of the csm-smb pack
over 60 s with worker SIGKILLs every 1-2 s, a SIGSTOP, a broker restart, a
Redis restart, a worker drain and poison jobs. Fails when chaos.py fails;
its report (and the daemons' logs on failure) is printed either way.

SCORELINE_CHAOS_ARGS adds flags (e.g. "--seed 7" to replay a run)."""

import os
import shlex
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHAOS = os.path.join(HERE, "..", "chaos", "chaos.py")


class ChaosShortTest(unittest.TestCase):

    def test_short_chaos_run_loses_nothing_and_emits_each_event_once(self):
        args = shlex.split(os.environ.get("SCORELINE_CHAOS_ARGS", ""))
        p = subprocess.run([sys.executable, CHAOS] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=540)
        out = p.stdout.decode("utf-8", "replace")
        sys.stdout.write(out)
        sys.stdout.flush()
        self.assertEqual(p.returncode, 0, "chaos.py failed (exit %d); report above" % p.returncode)


if __name__ == "__main__":
    unittest.main(verbosity=2)

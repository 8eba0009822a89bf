"""Bad input never crashes anything and always gets a specific, documented
answer: protocol errors, bad jobs, duplicates, a full queue, bad flags and a
missing Redis."""

import os
import subprocess
import time
import unittest

import msgpack

import scl

# Wire error codes (proto/PROTOCOL.md, "Error codes").
CODE_MALFORMED = "malformed_message"
CODE_SIGNATURE = "bad_signature"
CODE_COMMAND = "unknown_command"
CODE_TOO_LARGE = "too_large"
CODE_WRONG_TYPE = "wrong_type"
CODE_UNKNOWN_RUBRIC = "unknown_rubric"
CODE_INVALID_RESPONSE = "invalid_response"
CODE_QUEUE_FULL = "queue_full"

MAX_MESSAGE = 65536


def codes_of(body):
    """Every error code a REJECTED body carries (message level + per job)."""
    out = {body.get("code")}
    for j in body.get("jobs") or []:
        out.add(j.get("code"))
    out.discard(None)
    return out


class BadInputTest(scl.ClusterTest):

    def setUp(self):
        super().setUp()
        self.c = self.cluster(workers=1, broker_args=("--max-message", str(MAX_MESSAGE)))
        self.client = self.c.client()
        self.attempt = scl.load_attempt(scl.attempt_files()[0])

    def job(self, prefix="job", **over):
        return scl.job_from_attempt(self.attempt, scl.unique(prefix), **over)

    def expect_rejected(self, code, timeout=10):
        m = self.client.recv(timeout)
        self.assertIsNotNone(m, "no answer from the broker (expected REJECTED %s)" % code)
        self.assertEqual(m.command, "REJECTED", m)
        self.assertIn(code, codes_of(m.body), m)
        self.assertTrue(m.body.get("message"), "REJECTED needs a sentence: %r" % m)
        return m

    def assert_still_serving(self):
        self.assertTrue(self.c.broker.alive(), "broker died:\n" + self.c.broker.tail())
        j = self.job("after")
        got = self.client.submit([j], timeout=30)
        r = got.result(j["job_id"])
        self.assertEqual(r.body["status"], "ok", r)

    # ---- protocol errors --------------------------------------------------

    def test_malformed_msgpack_body_is_rejected(self):
        self.client.send_frames([scl.SIGNATURE, b"SUBMIT", b"\xc1\xff\x00garbage"])
        self.expect_rejected(CODE_MALFORMED)
        # Truncated map: valid start, missing the rest.
        self.client.send_frames([scl.SIGNATURE, b"SUBMIT", msgpack.packb({"seq": 1, "jobs": []})[:-2]])
        self.expect_rejected(CODE_MALFORMED)
        self.assert_still_serving()

    def test_wrong_signature_is_rejected(self):
        body = msgpack.packb({"seq": 7, "jobs": [self.job()]})
        self.client.send_frames([b"SCL9", b"SUBMIT", body])
        self.expect_rejected(CODE_SIGNATURE)
        self.assert_still_serving()

    def test_wrong_number_of_frames_is_rejected(self):
        self.client.send_frames([scl.SIGNATURE, b"SUBMIT"])
        self.expect_rejected("bad_frames")
        body = msgpack.packb({"seq": 3, "jobs": [self.job()]})
        self.client.send_frames([scl.SIGNATURE, b"SUBMIT", body, b"extra"])
        self.expect_rejected("bad_frames")
        self.assert_still_serving()

    def test_unknown_command_is_rejected(self):
        self.client.send_frames([scl.SIGNATURE, b"FROBNICATE", msgpack.packb({"seq": 8})])
        self.expect_rejected(CODE_COMMAND)
        self.assert_still_serving()

    def test_oversized_message_is_rejected(self):
        j = self.job("big")
        j["responses"] = dict(j["responses"])
        j["padding"] = "x" * (MAX_MESSAGE * 2)
        self.client.send("SUBMIT", {"seq": 9, "jobs": [j]})
        self.expect_rejected(CODE_TOO_LARGE)
        self.assert_still_serving()

    def test_wrong_typed_job_field_rejects_that_job(self):
        good = self.job("good")
        bad = self.job("bad")
        bad["tenant"] = 12345
        got = self.client.submit([good, bad], timeout=30)
        self.assertIn(bad["job_id"], got.rejected, got.messages)
        self.assertEqual(got.rejected[bad["job_id"]][0]["code"], CODE_WRONG_TYPE)
        self.assertTrue(got.rejected[bad["job_id"]][0].get("message"))
        # The rest of the batch still counts.
        self.assertEqual(got.result(good["job_id"]).body["status"], "ok")
        self.assertNotIn(bad["job_id"], got.results)
        # A job id of the wrong type is a per-job rejection too.
        got = self.client.submit([dict(self.job(), job_id=42)], seq=77, timeout=10, wait_results=False)
        self.assertTrue(any(CODE_WRONG_TYPE in codes_of(b) for b in got.rejects), got.messages)
        self.assert_still_serving()

    # ---- job content ------------------------------------------------------

    def test_unknown_rubric_is_rejected(self):
        j = self.job("norubric", rubric="no-such-rubric")
        got = self.client.submit([j], timeout=15)
        self.assertIn(j["job_id"], got.rejected, got.messages)
        self.assertEqual(got.rejected[j["job_id"]][0]["code"], CODE_UNKNOWN_RUBRIC)
        self.assertNotIn(j["job_id"], got.accepted)
        self.assert_still_serving()

    def test_response_for_unknown_item_is_an_error_result_not_retried(self):
        j = self.job("badresp")
        j["responses"] = dict(j["responses"], no_such_item_xyz="text")
        got = self.client.submit([j], timeout=30)
        r = got.result(j["job_id"]).body
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], CODE_INVALID_RESPONSE)
        self.assertTrue(r["error"].get("message"))
        self.assertEqual(r["attempt"], 1)
        # Wait past a few heartbeat intervals: a retry would add an event.
        time.sleep(4)
        got2 = self.client.collect(timeout=0.5)
        self.assertNotIn(j["job_id"], got2.results, "error RESULT was delivered again")
        self.assertEqual(self.stream_entries(j["job_id"]), 1)
        self.assert_still_serving()

    def stream_entries(self, job_id):
        red = self.c.redis_client()
        try:
            entries = red.call("XRANGE", self.c.key("events"), "-", "+") or []
        finally:
            red.close()
        return sum(1 for _, f in entries if dict(zip(f[::2], f[1::2])).get(b"job_id") == job_id.encode())

    def test_duplicate_after_completion_returns_the_same_result(self):
        j = self.job("dup")
        first = self.client.submit([j], timeout=30)
        r1 = first.result(j["job_id"])
        self.assertEqual(r1.body["status"], "ok")
        self.assertFalse(first.accepted[j["job_id"]][0].get("duplicate"))

        again = self.client.submit([j], timeout=30)
        acc = again.accepted[j["job_id"]]
        self.assertEqual(len(acc), 1, again.messages)
        self.assertIs(acc[0]["duplicate"], True)
        self.assertEqual(acc[0]["state"], "done")
        r2 = again.result(j["job_id"])
        self.assertEqual(r2.raw, r1.raw, "a duplicate must get the original RESULT bytes")
        self.assertEqual(self.stream_entries(j["job_id"]), 1)


class DuplicateWhileQueuedTest(scl.ClusterTest):

    def test_duplicate_while_queued_is_graded_once(self):
        c = self.cluster(workers=0)
        client = c.client()
        attempt = scl.load_attempt(scl.attempt_files()[0])
        j = scl.job_from_attempt(attempt, scl.unique("dupq"))
        a1 = client.submit([j], timeout=10, wait_results=False)
        self.assertFalse(a1.accepted[j["job_id"]][0].get("duplicate"))
        a2 = client.submit([j], timeout=10, wait_results=False)
        acc = a2.accepted[j["job_id"]][0]
        self.assertIs(acc["duplicate"], True)
        self.assertEqual(acc["state"], "queued")
        # The journal is <prefix>journal or, per broker, <prefix>journal:<name>.
        red = c.redis_client()
        jkeys = [k for k in red.call("KEYS", c.key("journal*")) if red.call("TYPE", k) == "stream"]
        self.assertTrue(jkeys, "no journal stream under %s" % c.key("journal"))
        self.assertEqual(sum(red.call("XLEN", k) for k in jkeys), 1,
                         "a duplicate must not be journaled twice")

        fake = scl.FakeWorker(c.work_ep, c.ctx, credit=10)
        try:
            jobs = fake.take(1, timeout=15)
            self.assertEqual(jobs[0]["job"]["job_id"], j["job_id"])
            more = fake.take(1, timeout=2, must=False)
            self.assertEqual(more, [], "the duplicate was delivered to a worker too")
        finally:
            fake.close()
        # A real worker then scores it once (the fake one never answered).
        c.start_worker()
        got = client.collect([j["job_id"]], timeout=60)
        self.assertEqual(got.result(j["job_id"]).body["status"], "ok")
        time.sleep(1)
        self.assertEqual(red.call("XLEN", c.key("events")), 1)


class QueueFullTest(scl.ClusterTest):

    def test_queue_full_rejects_beyond_max_queue(self):
        c = self.cluster(workers=0, broker_args=("--max-queue", "10"))
        client = c.client()
        attempt = scl.load_attempt(scl.attempt_files()[0])
        accepted, rejected = [], []
        for i in range(15):
            j = scl.job_from_attempt(attempt, scl.unique("qf%02d" % i))
            got = client.submit([j], timeout=10, wait_results=False)
            if j["job_id"] in got.accepted:
                accepted.append(j["job_id"])
            for e in got.rejected.get(j["job_id"], []):
                self.assertEqual(e["code"], CODE_QUEUE_FULL, got.messages)
                rejected.append(j["job_id"])
        self.assertEqual(len(accepted), 10)
        self.assertEqual(len(rejected), 5)
        self.assertTrue(c.broker.alive())


class DaemonFlagsTest(unittest.TestCase):

    def setUp(self):
        self.tmpdir = scl.tempfile.mkdtemp(prefix="scl-flags-")
        self.addCleanup(scl.shutil.rmtree, self.tmpdir, True)

    def run_bin(self, name, args, timeout=30):
        return subprocess.run([scl.binary(name)] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, env=scl.process_env())

    def eps(self):
        return ["--submit", scl.tcp(scl.free_port()), "--work", scl.tcp(scl.free_port()),
                "--events", scl.tcp(scl.free_port())]

    def test_broker_exits_3_when_redis_is_down_at_start(self):
        url = "redis://127.0.0.1:%d/0" % scl.free_port()
        cp = self.run_bin("scoreline-broker", ["--redis", url] + self.eps())
        self.assertEqual(cp.returncode, 3, cp)
        self.assertIn("redis", cp.stderr.decode().lower())

    def test_worker_rejects_a_zero_credit_window(self):
        # Credit is 1..10000 (PROTOCOL.md); a bad value is a usage error
        # before the worker connects anywhere.
        cp = self.run_bin("scoreline-worker", ["--credit", "0", "--broker", scl.tcp(scl.free_port())])
        self.assertEqual(cp.returncode, 2, cp)
        self.assertTrue(cp.stderr.strip())

    def test_bad_flags_exit_2_with_a_sentence(self):
        for name, args in (
                ("scoreline-broker", ["--no-such-flag"]),
                ("scoreline-broker", ["--max-queue", "lots"]),
                ("scoreline-broker", ["--submit"]),
                ("scoreline-worker", ["--no-such-flag"]),
                ("scoreline-worker", ["--credit", "many"]),
                ("scoreline", ["--no-such-flag", "events"]),
                ("scoreline", ["submit", "--timeout", "soon"])):
            cp = self.run_bin(name, args)
            self.assertEqual(cp.returncode, 2, "%s %s: %r" % (name, args, cp))
            err = cp.stderr.decode().strip()
            self.assertTrue(err, "%s %s printed no sentence" % (name, args))
            self.assertLess(len(err.splitlines()), 40, "a usage error is a sentence, not a manual")

    def test_help_exits_0_everywhere(self):
        for name, args in (
                ("scoreline-broker", ["--help"]),
                ("scoreline-worker", ["--help"]),
                ("scoreline", ["--help"]),
                ("scoreline", ["rubric", "--help"]),
                ("scoreline", ["rubric", "push", "--help"]),
                ("scoreline", ["rubric", "show", "--help"]),
                ("scoreline", ["rubric", "lint", "--help"]),
                ("scoreline", ["grade", "--help"]),
                ("scoreline", ["submit", "--help"]),
                ("scoreline", ["events", "--help"])):
            cp = self.run_bin(name, args)
            self.assertEqual(cp.returncode, 0, "%s %s: %r" % (name, args, cp))
            self.assertIn("usage", (cp.stdout + cp.stderr).decode().lower(), "%s %s" % (name, args))


if __name__ == "__main__":
    scl.main()

"""The scoreline CLI against a real redis-server and broker: rubric
push/show/lint, offline grade, submit, events, and its exit codes."""

import json
import os
import re
import time
import unittest

import msgpack

import scl

HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


class OfflineCliTest(unittest.TestCase):
    """Commands that need no service."""

    def setUp(self):
        self.tmpdir = scl.tempfile.mkdtemp(prefix="scl-cli-")
        self.addCleanup(scl.shutil.rmtree, self.tmpdir, True)
        self.rubric = scl.rubric_file()
        self.attempts = scl.attempt_files()
        self.assertTrue(self.attempts, "no sample attempts under %s" % scl.ATTEMPT_DIR)

    def test_rubric_lint_accepts_the_shipped_rubric(self):
        for f in scl.rubric_files():
            r = scl.run_cli(["rubric", "lint", f])
            self.assertEqual(r.rc, 0, r)

    def test_rubric_lint_rejects_an_invalid_rubric_with_exit_1(self):
        with open(self.rubric) as f:
            rubric = json.load(f)
        rubric.pop("items", None)
        bad = write_json(os.path.join(self.tmpdir, "no-items.json"), rubric)
        r = scl.run_cli(["rubric", "lint", bad])
        self.assertEqual(r.rc, 1, r)
        self.assertTrue(r.err.strip(), "lint failure must say why on stderr")

        notjson = os.path.join(self.tmpdir, "broken.json")
        with open(notjson, "w") as f:
            f.write('{"id": "x", "items": [')
        r = scl.run_cli(["rubric", "lint", notjson])
        self.assertEqual(r.rc, 1, r)

    def test_rubric_lint_of_a_missing_file_is_a_usage_error(self):
        r = scl.run_cli(["rubric", "lint", os.path.join(self.tmpdir, "nope.json")])
        self.assertEqual(r.rc, 2, r)

    def test_grade_json_output_is_byte_identical_across_runs(self):
        for a in self.attempts:
            r1 = scl.run_cli(["grade", self.rubric, a])
            r2 = scl.run_cli(["grade", self.rubric, a])
            self.assertEqual(r1.rc, 0, r1)
            self.assertEqual(r1.stdout, r2.stdout, "grade output differs between runs for %s" % a)
            doc = json.loads(r1.out)
            self.assertIsInstance(doc, dict)
            self.assertRegex(doc.get("digest", ""), HASH_RE, "grade JSON must carry the digest")

    def test_grade_msgpack_output_is_a_map_and_deterministic(self):
        a = self.attempts[0]
        r1 = scl.run_cli(["grade", self.rubric, a, "--msgpack"])
        r2 = scl.run_cli(["grade", self.rubric, a, "--msgpack"])
        self.assertEqual(r1.rc, 0, r1)
        self.assertEqual(r1.stdout, r2.stdout)
        m = msgpack.unpackb(r1.stdout, raw=False)
        self.assertIsInstance(m, dict)
        # msgpack and JSON renderings describe the same result.
        doc = json.loads(scl.run_cli(["grade", self.rubric, a]).out)
        self.assertEqual(m.get("digest"), doc.get("digest"))

    def test_grade_rejects_a_response_for_an_unknown_item(self):
        att = scl.load_attempt(self.attempts[0])
        att["responses"] = dict(att["responses"])
        att["responses"]["no_such_item_xyz"] = "hello"
        f = write_json(os.path.join(self.tmpdir, "bad.json"), att)
        r = scl.run_cli(["grade", self.rubric, f])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("invalid_response", r.err)

    def test_bad_flag_exits_2(self):
        r = scl.run_cli(["grade", "--no-such-flag", self.rubric, self.attempts[0]])
        self.assertEqual(r.rc, 2, r)
        self.assertTrue(r.err.strip())
        r = scl.run_cli(["--no-such-global", "events"])
        self.assertEqual(r.rc, 2, r)
        r = scl.run_cli(["no-such-command"])
        self.assertEqual(r.rc, 2, r)

    def test_unreachable_broker_exits_3(self):
        port = scl.free_port()
        t0 = time.monotonic()
        r = scl.run_cli(["--broker", scl.tcp(port), "--redis", "redis://127.0.0.1:%d/0" % scl.free_port(),
                         "submit", "--timeout", "2", self.attempts[0]], timeout=30)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(r.err.strip(), "must say which service is unavailable")
        self.assertLess(elapsed, 15, "--timeout 2 must bound the wait")

    def test_unreachable_redis_exits_3(self):
        r = scl.run_cli(["--redis", "redis://127.0.0.1:%d/0" % scl.free_port(),
                         "rubric", "push", self.rubric])
        self.assertEqual(r.rc, 3, r)


class ServiceCliTest(scl.ClusterTest):
    """Commands that talk to Redis and the broker."""

    def setUp(self):
        super().setUp()
        self.c = self.cluster(workers=1, push=False)
        self.attempts = scl.attempt_files()
        self.assertTrue(self.attempts)

    def attempt_copy(self, src, job_id, **changes):
        att = scl.load_attempt(src)
        att["job_id"] = job_id
        att.update(changes)
        return write_json(os.path.join(self.tmpdir, job_id + ".json"), att)

    def test_rubric_push_prints_hash_and_id_and_is_idempotent(self):
        files = scl.rubric_files()
        r = self.c.cli("rubric", "push", *files)
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), len(files), r)
        for line in lines:
            h, rid = line.split()
            self.assertRegex(h, HASH_RE)
        ids = [l.split()[1] for l in lines]
        self.assertIn("csm-smb", ids)
        # Same content, same hash; the id pointer in Redis names it.
        r2 = self.c.cli("rubric", "push", *files)
        self.assertEqual(r2.out, r.out)
        h = dict((l.split()[1], l.split()[0]) for l in lines)["csm-smb"]
        red = self.c.redis_client()
        self.assertEqual(red.call("GET", self.c.key("rubric:id:csm-smb")), h.encode())
        self.assertIsNotNone(red.call("GET", self.c.key("rubric:hash:" + h)))

    def test_rubric_show_by_id_and_by_hash(self):
        r = self.c.cli("rubric", "push", scl.rubric_file())
        self.assertEqual(r.rc, 0, r)
        h = r.out.split()[0]
        by_id = self.c.cli("rubric", "show", "csm-smb")
        by_hash = self.c.cli("rubric", "show", h)
        self.assertEqual(by_id.rc, 0, by_id)
        self.assertEqual(by_hash.rc, 0, by_hash)
        self.assertEqual(by_id.stdout, by_hash.stdout)
        self.assertEqual(json.loads(by_id.out).get("id"), "csm-smb")
        missing = self.c.cli("rubric", "show", "no-such-rubric")
        self.assertEqual(missing.rc, 1, missing)

    def test_submit_one_attempt_prints_one_ok_line(self):
        self.c.push_rubric()
        f = self.attempt_copy(self.attempts[0], scl.unique("cli-one"))
        r = self.c.cli("submit", "--timeout", "30", f)
        self.assertEqual(r.rc, 0, r)
        lines = r.json_lines()
        self.assertEqual(len(lines), 1, r)
        ev = lines[0]
        self.assertEqual(ev["job_id"], scl.load_attempt(f)["job_id"])
        self.assertEqual(ev["status"], "ok")
        self.assertRegex(ev["digest"], HASH_RE)
        # The submitted result is what offline grading computes.
        g = scl.run_cli(["grade", scl.rubric_file(), f])
        self.assertEqual(json.loads(g.out).get("digest"), ev["digest"])

    def test_submit_no_wait_returns_before_the_result_and_the_job_is_scored(self):
        self.c.push_rubric()
        job_id = scl.unique("cli-nowait")
        f = self.attempt_copy(self.attempts[0], job_id)
        r = self.c.cli("submit", "--no-wait", f)
        self.assertEqual(r.rc, 0, r)
        lines = r.json_lines()
        self.assertEqual(len(lines), 1, r)
        self.assertEqual(lines[0]["job_id"], job_id)
        self.assertNotIn(lines[0].get("status"), ("rejected", "ok", "error"),
                         "--no-wait must return on acceptance, not wait for the result: %r" % r)
        self.assertNotIn("result", lines[0])
        red = self.c.redis_client()

        def scored():
            entries = red.call("XRANGE", self.c.key("events"), "-", "+")
            return any(dict(zip(e[1][::2], e[1][1::2])).get(b"job_id") == job_id.encode()
                       for e in entries or [])
        scl.wait_for(scored, 30, "job %s submitted with --no-wait to be scored" % job_id)

    def test_failed_job_exits_1(self):
        self.c.push_rubric()
        att = scl.load_attempt(self.attempts[0])
        responses = dict(att["responses"])
        responses["no_such_item_xyz"] = "text"
        f = self.attempt_copy(self.attempts[0], scl.unique("cli-bad"), responses=responses)
        r = self.c.cli("submit", "--timeout", "30", f)
        self.assertEqual(r.rc, 1, r)
        lines = r.json_lines()
        self.assertEqual(len(lines), 1, r)
        self.assertEqual(lines[0]["status"], "error")
        self.assertEqual(lines[0]["error"]["code"], "invalid_response")

        # A rejected job (unknown rubric) also exits 1, with a rejected line.
        f2 = self.attempt_copy(self.attempts[0], scl.unique("cli-rej"), rubric="no-such-rubric")
        r2 = self.c.cli("submit", "--timeout", "30", f2)
        self.assertEqual(r2.rc, 1, r2)
        l2 = r2.json_lines()
        self.assertEqual(len(l2), 1, r2)
        self.assertEqual(l2[0]["status"], "rejected")
        self.assertEqual(l2[0]["error"]["code"], "unknown_rubric")

    def test_events_count_and_from(self):
        self.c.push_rubric()
        ids = [scl.unique("cli-ev%d" % i) for i in range(4)]
        files = [self.attempt_copy(self.attempts[i % len(self.attempts)], j) for i, j in enumerate(ids)]
        r = self.c.cli("submit", "--timeout", "60", *files)
        self.assertEqual(r.rc, 0, r)

        all_ev = self.c.cli("events", "--count", "100")
        self.assertEqual(all_ev.rc, 0, all_ev)
        evs = all_ev.json_lines()
        self.assertEqual(sorted(e["job_id"] for e in evs), sorted(ids))
        for e in evs:
            self.assertIn("stream_id", e)
            self.assertEqual(e["status"], "ok")

        two = self.c.cli("events", "--count", "2")
        self.assertEqual(two.rc, 0, two)
        self.assertEqual(len(two.json_lines()), 2, two)

        sids = [e["stream_id"] for e in evs]
        self.assertEqual(sids, sorted(sids, key=lambda s: tuple(int(x) for x in s.split("-"))),
                         "events must come in stream order")
        # --from: events at or after the given id (never the earlier ones).
        frm = self.c.cli("events", "--from", sids[1], "--count", "100")
        self.assertEqual(frm.rc, 0, frm)
        got = [e["stream_id"] for e in frm.json_lines()]
        self.assertNotIn(sids[0], got)
        self.assertIn(sids[2], got)
        self.assertIn(sids[3], got)


if __name__ == "__main__":
    scl.main()

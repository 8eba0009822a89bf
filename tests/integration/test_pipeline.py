"""The whole pipeline under load: redis + broker + 2 workers, 1,000 jobs
submitted in batches by the spec-only Python client. Every job is scored
exactly once, lands exactly once in the events stream and on the PUB socket,
and its result is byte-identical to offline grading."""

import re
import threading
import time
import unittest

import msgpack
import zmq

import scl

NJOBS = 1000
BATCH = 100
WINDOW = 3  # batches in flight at once
HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class Subscriber(threading.Thread):
    """Drains the broker's PUB socket into a list as fast as it can."""

    def __init__(self, ctx, endpoint):
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.frames = []
        self.stopping = False

    def run(self):
        while not self.stopping:
            if self.sock.poll(100):
                self.frames.append(self.sock.recv_multipart())
        self.sock.close(0)


class PipelineTest(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = scl.tempfile.mkdtemp(prefix="scl-pipeline-")
        cls.cluster = scl.Cluster(cls.tmpdir)
        try:
            cls._run()
        except BaseException:
            cls._close(show_logs=True)
            raise

    @classmethod
    def _run(cls):
        c = cls.cluster
        c.start(workers=2)
        c.push_rubric()
        cls.attempt_paths = scl.attempt_files()
        if not cls.attempt_paths:
            raise AssertionError("no sample attempts under %s" % scl.ATTEMPT_DIR)
        cls.attempts = [scl.load_attempt(p) for p in cls.attempt_paths]

        # The subscriber connects first and gets a moment to join (PUB drops
        # messages for subscribers that have not finished connecting).
        cls.sub = Subscriber(c.ctx, c.events_ep)
        cls.sub.start()
        time.sleep(0.5)

        run = scl.uuid.uuid4().hex[:8]
        cls.jobs = []
        cls.attempt_of = {}
        for i in range(NJOBS):
            k = i % len(cls.attempts)
            job_id = "pipe-%s-%05d" % (run, i)
            cls.jobs.append(scl.job_from_attempt(cls.attempts[k], job_id))
            cls.attempt_of[job_id] = k

        client = c.client()
        cls.collected = scl.Collected()
        batches = [cls.jobs[i:i + BATCH] for i in range(0, NJOBS, BATCH)]
        t0 = time.monotonic()
        inflight = []  # (seq, job ids)
        for b in batches:
            seq = client.submit_async(b)
            inflight.append((seq, [j["job_id"] for j in b]))
            if len(inflight) >= WINDOW:
                seq0, ids0 = inflight.pop(0)
                client.collect(ids0, [seq0], timeout=120, into=cls.collected, drain=False)
        for seq0, ids0 in inflight:
            client.collect(ids0, [seq0], timeout=120, into=cls.collected, drain=False)
        # Anything late (a duplicate RESULT would show up here).
        time.sleep(1.0)
        while True:
            m = client.recv(0.3)
            if m is None:
                break
            cls.collected.add(m)
        cls.elapsed = time.monotonic() - t0

        # Let the PUB stream catch up, then stop the subscriber.
        scl.wait_for(lambda: len(cls.sub.frames) >= NJOBS, 20, "%d events on the PUB socket" % NJOBS)
        time.sleep(0.5)
        cls.sub.stopping = True
        cls.sub.join(5)

        red = c.redis_client()
        cls.xlen = red.call("XLEN", c.key("events"))
        cls.stream = red.call("XRANGE", c.key("events"), "-", "+")
        red.close()

        # Offline grading of each sample attempt: the reference bytes.
        cls.offline = {}
        rubric = scl.rubric_file()
        for k, p in enumerate(cls.attempt_paths):
            r = scl.run_cli(["grade", rubric, p, "--msgpack"])
            if r.rc != 0:
                raise AssertionError("offline grade failed for %s: %r" % (p, r))
            cls.offline[k] = r.stdout

    @classmethod
    def _close(cls, show_logs=False):
        if cls.cluster is None:
            return []
        sub = getattr(cls, "sub", None)
        if sub is not None:
            sub.stopping = True
            sub.join(5)
        failures = cls.cluster.close()
        if show_logs or failures:
            scl.sys.stderr.write("\n" + cls.cluster.logs() + "\n")
        scl.shutil.rmtree(cls.tmpdir, ignore_errors=True)
        cls.cluster = None
        return failures

    @classmethod
    def tearDownClass(cls):
        failures = cls._close()
        if failures:
            raise AssertionError("daemons did not stop cleanly: %s" % "; ".join(failures))

    # ---- submitter side ---------------------------------------------------

    def test_every_job_is_accepted_once_and_none_rejected(self):
        self.assertEqual(self.collected.rejects, [])
        self.assertEqual(len(self.collected.accepted), NJOBS)
        for job_id, entries in self.collected.accepted.items():
            self.assertEqual(len(entries), 1, job_id)
            self.assertFalse(entries[0].get("duplicate"), job_id)

    def test_exactly_one_ok_result_per_job(self):
        ids = {j["job_id"] for j in self.jobs}
        self.assertEqual(set(self.collected.results), ids)
        n = sum(len(v) for v in self.collected.results.values())
        self.assertEqual(n, NJOBS, "duplicate RESULTs delivered")
        bad = [(k, v[0].body.get("status"), v[0].body.get("error"))
               for k, v in self.collected.results.items() if v[0].body.get("status") != "ok"]
        self.assertEqual(bad, [])
        print("\n%d jobs scored in %.2fs (%.0f jobs/s)" % (NJOBS, self.elapsed, NJOBS / self.elapsed))

    def test_result_bytes_match_offline_grading(self):
        for job_id, msgs in self.collected.results.items():
            body = msgs[0].body
            ref = self.offline[self.attempt_of[job_id]]
            got = msgpack.packb(body["result"], use_bin_type=True)
            self.assertEqual(got, ref, "result of %s differs from `scoreline grade --msgpack`" % job_id)
            self.assertEqual(body["digest"], msgpack.unpackb(ref, raw=False)["digest"], job_id)

    def test_events_carry_the_submitted_identity(self):
        for job in self.jobs:
            b = self.collected.result(job["job_id"]).body
            self.assertEqual(b["job_id"], job["job_id"])
            self.assertEqual(b["tenant"], job["tenant"])
            self.assertEqual(b["rubric"], job["rubric"])
            self.assertEqual(b["attempt"], 1)
        workers = {self.collected.result(j["job_id"]).body["worker"] for j in self.jobs}
        expected = {w.worker_id for w in self.cluster.workers}
        self.assertTrue(workers <= expected, workers)

    # ---- Redis stream -----------------------------------------------------

    def test_stream_has_exactly_one_entry_per_job(self):
        self.assertEqual(self.xlen, NJOBS)
        ids = []
        for _, fields in self.stream:
            f = dict(zip(fields[::2], fields[1::2]))
            ids.append(f[b"job_id"].decode())
        self.assertEqual(len(ids), len(set(ids)), "duplicate job ids in the events stream")
        self.assertEqual(set(ids), {j["job_id"] for j in self.jobs})

    def test_stream_event_is_the_result_sent_to_the_submitter(self):
        for _, fields in self.stream:
            f = dict(zip(fields[::2], fields[1::2]))
            job_id = f[b"job_id"].decode()
            self.assertEqual(f[b"event"], self.collected.result(job_id).raw,
                             "stream event bytes differ from the RESULT body for %s" % job_id)

    def test_stream_event_has_the_documented_keys_and_types(self):
        _, fields = self.stream[0]
        f = dict(zip(fields[::2], fields[1::2]))
        ev = msgpack.unpackb(f[b"event"], raw=False)
        self.assertIsInstance(ev, dict)
        types = {
            "v": int, "job_id": str, "tenant": str, "rubric": str, "rubric_hash": str,
            "engine": str, "worker": str, "attempt": int, "accepted_us": int,
            "started_us": int, "finished_us": int, "duration_us": int, "status": str,
            "result": dict, "digest": str,
        }
        for key, typ in types.items():
            self.assertIn(key, ev, "event lacks %r" % key)
            self.assertIsInstance(ev[key], typ, "event[%r] is %r" % (key, type(ev[key])))
        self.assertEqual(ev["v"], 1)
        self.assertEqual(ev["status"], "ok")
        self.assertRegex(ev["rubric_hash"], HASH_RE)
        self.assertRegex(ev["digest"], HASH_RE)
        self.assertTrue(ev["engine"].startswith("scoreline-grading/"), ev["engine"])
        self.assertLessEqual(ev["accepted_us"], ev["started_us"])
        self.assertLessEqual(ev["started_us"], ev["finished_us"])
        self.assertGreater(ev["accepted_us"], 1_500_000_000_000_000)  # unix microseconds
        self.assertEqual(f[b"job_id"].decode(), ev["job_id"])

    # ---- PUB socket -------------------------------------------------------

    def test_pub_socket_delivers_every_event(self):
        bodies = {}
        for frames in self.sub.frames:
            self.assertEqual(frames[:2], [scl.SIGNATURE, b"RESULT"], "PUB message: %r" % frames[:2])
            self.assertEqual(len(frames), 3)
            ev = msgpack.unpackb(frames[-1], raw=False)
            bodies.setdefault(ev["job_id"], []).append(frames[-1])
        self.assertEqual(set(bodies), {j["job_id"] for j in self.jobs})
        for job_id, bs in bodies.items():
            self.assertEqual(len(bs), 1, "PUB emitted %s %d times" % (job_id, len(bs)))
            self.assertEqual(bs[0], self.collected.result(job_id).raw)


if __name__ == "__main__":
    scl.main()

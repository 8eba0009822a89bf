"""Batched messages through a real broker (PROTOCOL.md 5.10, 5.11, 6.11).

A worker that says READY batch=N gets JOBS and may answer with RESULTS; a
submitter that sets SUBMIT batch_results gets RESULTS. Peers that do not ask
keep getting JOB and RESULT, in the same broker at the same time. Every
score event is forwarded with the worker's exact bytes, whichever way it
travels."""

import os
import time

import msgpack
import zmq

import scl

NOOP_RUBRIC = os.path.join(scl.SOURCE_DIR, "bench", "rubrics", "noop.json")
HASH = "0123456789abcdef" * 4


def elements(body):
    """The raw bytes of each element of a JOBS / RESULTS body."""
    u = msgpack.Unpacker(raw=False)
    u.feed(body)
    assert u.read_map_header() == 1
    key = u.unpack()
    n = u.read_array_header()
    out = []
    for _ in range(n):
        start = u.tell()
        u.skip()
        out.append(body[start:u.tell()])
    return key, out


def noop_job(job_id):
    return {"job_id": job_id, "tenant": "acme", "rubric": "bench-noop",
            "responses": {"q1": "yes"}}


class Submitter:
    """A DEALER that records every message and the score events' raw bytes."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.commands = []
        self.events = {}  # job_id -> list of raw RESULT bodies
        self.accepted = set()

    def submit(self, jobs, seq, batch_results):
        body = {"seq": seq, "jobs": jobs}
        if batch_results:
            body["batch_results"] = True
        self.sock.send_multipart([scl.SIGNATURE, b"SUBMIT", msgpack.packb(body)])

    def pump(self, timeout):
        if not self.sock.poll(int(timeout * 1000)):
            return
        sig, cmd, body = self.sock.recv_multipart()
        assert sig == scl.SIGNATURE
        cmd = cmd.decode()
        self.commands.append(cmd)
        if cmd == "ACCEPTED":
            self.accepted |= {j["job_id"] for j in scl.unpack(body)["jobs"]}
        elif cmd == "REJECTED":
            raise AssertionError("unexpected REJECTED: %r" % scl.unpack(body))
        elif cmd == "RESULT":
            self.events.setdefault(scl.unpack(body)["job_id"], []).append(body)
        elif cmd == "RESULTS":
            key, elems = elements(body)
            assert key == "results" and elems, (key, len(elems))
            for e in elems:
                self.events.setdefault(scl.unpack(e)["job_id"], []).append(e)


def pump_until(subs, done, timeout, what, others=()):
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        for s in subs:
            s.pump(0.05)
        for o in others:
            o()


class BatchTest(scl.ClusterTest):

    def test_batched_and_single_peers_share_one_broker(self):
        """Two real workers (one with --batch 0, one with --batch 16) and two
        submitters (one asking for RESULTS, one not): every job is scored
        once, each submitter gets the message kind it asked for, and every
        event's bytes equal the PUB copy and the events stream's."""
        c = self.cluster(workers=0)
        r = c.cli("rubric", "push", NOOP_RUBRIC)
        self.assertEqual(r.rc, 0, r)
        single_w = c.start_worker("--batch", "0", credit=32)
        batch_w = c.start_worker("--batch", "16", credit=64)
        sub = c.subscriber()
        time.sleep(0.3)  # let the SUB connect before events are published
        plain = Submitter(c.ctx, c.submit_ep)
        batched = Submitter(c.ctx, c.submit_ep)
        c.clients += [plain.sock, batched.sock]
        n = 400
        ids_plain = [scl.unique("plain") for _ in range(n)]
        ids_batch = [scl.unique("batch") for _ in range(n)]
        for k in range(0, n, 50):
            plain.submit([noop_job(i) for i in ids_plain[k:k + 50]], k, False)
            batched.submit([noop_job(i) for i in ids_batch[k:k + 50]], k, True)
        pub = {}

        def read_pub():
            while sub.poll(0):
                sig, cmd, body = sub.recv_multipart()
                self.assertEqual(cmd, b"RESULT")
                pub.setdefault(scl.unpack(body)["job_id"], []).append(body)

        pump_until([plain, batched],
                   lambda: len(plain.events) == n and len(batched.events) == n and len(pub) == 2 * n,
                   60, "every score event", [read_pub])
        for s in (plain, batched):
            s.pump(0.3)
        read_pub()

        self.assertNotIn("RESULTS", plain.commands)
        self.assertEqual(plain.commands.count("RESULT"), n)
        self.assertIn("RESULTS", batched.commands)
        self.assertNotIn("RESULT", batched.commands)
        # fewer messages than events: several events per RESULTS
        self.assertLess(batched.commands.count("RESULTS"), n)
        for s, ids in ((plain, ids_plain), (batched, ids_batch)):
            self.assertEqual(set(s.events), set(ids))
            for i in ids:
                self.assertEqual(len(s.events[i]), 1, i)
                self.assertEqual(len(pub[i]), 1, i)
                self.assertEqual(s.events[i][0], pub[i][0], "event bytes changed on the way")
                ev = scl.unpack(s.events[i][0])
                self.assertEqual(ev["status"], "ok", ev)
        # both workers graded jobs
        graders = {scl.unpack(s.events[i][0])["worker"]
                   for s, ids in ((plain, ids_plain), (batched, ids_batch)) for i in ids}
        self.assertEqual(graders, {single_w.worker_id, batch_w.worker_id})
        # the durable copy in the events stream has the same bytes
        rc = c.redis_client()
        entries = rc.call("XRANGE", c.key("events"), "-", "+")
        stored = {}
        for _, fields in entries:
            f = dict(zip(fields[::2], fields[1::2]))
            body = f.get(b"event") or f.get("event")
            if body is not None:
                stored[scl.unpack(body)["job_id"]] = body
        for i in ids_plain + ids_batch:
            self.assertEqual(stored.get(i), pub[i][0], i)
        self.assertStopsCleanly(batch_w)
        self.assertStopsCleanly(single_w)

    def test_jobs_and_results_on_the_wire(self):
        """Frame-level: a worker announcing batch=4 gets JOBS of at most 4
        elements (each a JOB body), one announcing nothing gets JOB; a
        RESULTS answer frees the credit and every element reaches the
        submitter unchanged; a RESULTS with one bad element keeps the others."""
        c = self.cluster(workers=0)
        self.assertEqual(c.cli("rubric", "push", NOOP_RUBRIC).rc, 0)
        ctx = c.ctx
        old = scl.FakeWorker(c.work_ep, ctx, credit=3, worker_id="old-worker")
        new = ctx.socket(zmq.DEALER)
        c.clients.append(new)
        new.setsockopt(zmq.LINGER, 0)
        new.connect(c.work_ep)
        new.send_multipart([scl.SIGNATURE, b"READY", msgpack.packb(
            {"worker": "new-worker", "credit": 9, "engine": "fake/1", "batch": 4})])
        c.broker.wait_log("worker=new-worker", timeout=10)
        c.broker.wait_log("worker=old-worker", timeout=10)
        client = Submitter(ctx, c.submit_ep)
        c.clients.append(client.sock)
        ids = [scl.unique("w") for _ in range(12)]
        client.submit([noop_job(i) for i in ids], 1, True)
        pump_until([client], lambda: len(client.accepted) == 12, 20, "ACCEPTED")

        got_jobs = []
        deadline = time.monotonic() + 20
        while len(got_jobs) < 9 and time.monotonic() < deadline:
            old.pump(0.05)
            if new.poll(50):
                sig, cmd, body = new.recv_multipart()
                self.assertEqual(cmd, b"JOBS", (cmd, body[:80]))
                key, elems = elements(body)
                self.assertEqual(key, "jobs")
                self.assertTrue(1 <= len(elems) <= 4, len(elems))
                got_jobs += [scl.unpack(e) for e in elems]
        self.assertEqual(len(got_jobs), 9)  # its whole credit, in JOBS only
        old.pump(0.5)
        self.assertEqual(len(old.jobs), 3)  # the old worker got JOB messages
        self.assertEqual({j["job"]["job_id"] for j in got_jobs} | {j["job"]["job_id"] for j in old.jobs},
                         set(ids))

        def result(jm, worker):
            return msgpack.packb({
                "v": 1, "job_id": jm["job"]["job_id"], "tenant": "acme", "rubric": "bench-noop",
                "engine": "fake/1", "worker": worker, "attempt": jm["attempt"],
                "accepted_us": jm["accepted_us"], "started_us": 1, "finished_us": 2,
                "duration_us": 1, "status": "ok", "result": {"fake": [1, 2.5, "x"]},
                "digest": HASH})

        sent = {}
        elems = []
        for jm in got_jobs:
            e = result(jm, "new-worker")
            sent[jm["job"]["job_id"]] = e
            elems.append(e)
        # one bad element (attempt 0) among them: only it is dropped
        bad = msgpack.packb({"v": 1, "job_id": got_jobs[0]["job"]["job_id"], "attempt": 0})
        body = b"\x81\xa7results" + b"\xdc" + (len(elems) + 1).to_bytes(2, "big") + bad + b"".join(elems)
        new.send_multipart([scl.SIGNATURE, b"RESULTS", body])
        for jm in old.jobs:
            e = result(jm, "old-worker")
            sent[jm["job"]["job_id"]] = e
            old._send("RESULT", scl.unpack(e))
        pump_until([client], lambda: len(client.events) == 12, 20, "12 events")
        for i in ids:
            self.assertEqual(len(client.events[i]), 1)
        for jm in got_jobs:
            i = jm["job"]["job_id"]
            self.assertEqual(client.events[i][0], sent[i])
        self.assertIn("worker.bad_result", c.broker.log())
        old.close()


if __name__ == "__main__":
    scl.main()

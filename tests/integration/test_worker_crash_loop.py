"""Which lost deliveries count toward the dead-letter limit (PROTOCOL.md 6.7,
6.9): a worker that says READY and dies before saying anything else could
not have started the jobs sent in answer to that READY, so none is charged,
and a crash-looping worker cannot dead-letter a job no live process ever
received. A worker that had been heard from and dies with a job in hand is
charged as before (a job that kills its worker still reaches the
dead-letter stream), and a job whose workers all die at once is given up
after 4 x --max-attempts deliveries."""

import time
import unittest

import msgpack
import zmq

import scl


def fake_worker(c, name, credit=1):
    """A DEALER that says READY and nothing else unless told to."""
    s = c.ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(c.work_ep)
    s.send_multipart([scl.SIGNATURE, b"READY",
                      msgpack.packb({"worker": name, "credit": credit})])
    return s


def take_job(s, timeout):
    """The next JOB (HEARTBEATs skipped), read without answering anything."""
    deadline = time.monotonic() + timeout
    while s.poll(int(max(0.0, deadline - time.monotonic()) * 1000)):
        frames = s.recv_multipart()
        if frames[1] == b"JOB":
            return scl.unpack(frames[2])
    raise AssertionError("no JOB within %.1f s" % timeout)


class CrashLoopTest(scl.ClusterTest):

    def test_worker_dying_right_after_ready_is_not_charged(self):
        # --max-attempts 1: a single charge would dead-letter the job.
        c = self.cluster(workers=0, broker_args=("--heartbeat", "200", "--max-attempts", "1"))
        client = c.client()
        job = scl.job_from_attempt(scl.load_attempt(scl.attempt_files()[0]), scl.unique("inno"))
        s = fake_worker(c, "dies-at-once")
        client.submit([job], timeout=10, wait_results=False)
        self.assertEqual(take_job(s, 5)["attempt"], 1)
        s.close(0)  # gone without a word after READY
        c.broker.wait_log("event=worker.died_at_once", timeout=5)
        c.start_worker("--heartbeat", "200")
        got = client.collect([job["job_id"]], timeout=20)
        self.assertNotIn(job["job_id"], got.rejected, got.messages)
        body = got.result(job["job_id"]).body
        self.assertEqual(body["status"], "ok", scl.brief(body))
        self.assertEqual(body["attempt"], 2)
        self.assertNotIn("event=job.dead_letter", c.broker.log())

    def test_worker_heard_from_then_dying_with_the_job_is_charged(self):
        c = self.cluster(workers=0, broker_args=("--heartbeat", "200", "--max-attempts", "1"))
        client = c.client()
        job = scl.job_from_attempt(scl.load_attempt(scl.attempt_files()[0]), scl.unique("kill"))
        s = fake_worker(c, "lives-then-dies")
        s.send_multipart([scl.SIGNATURE, b"HEARTBEAT", msgpack.packb({"inflight": 0})])
        time.sleep(0.3)  # the HEARTBEAT is read before the job is dispatched
        client.submit([job], timeout=10, wait_results=False)
        take_job(s, 5)
        s.close(0)  # dies grading it, as a job that crashes its worker does
        c.start_worker("--heartbeat", "200")  # the job is given up when next due
        got = client.collect([job["job_id"]], timeout=10)
        codes = [e["code"] for e in got.rejected.get(job["job_id"], [])]
        self.assertEqual(codes, ["dead_letter"], got.messages)
        self.assertIn("1 deliveries failed; last: worker lives-then-dies",
                      got.rejected[job["job_id"]][0]["message"])

    def test_job_whose_workers_all_die_at_once_is_given_up(self):
        # --max-attempts 1: given up when a 5th delivery is due.
        c = self.cluster(workers=0, broker_args=("--heartbeat", "200", "--max-attempts", "1"))
        client = c.client()
        job = scl.job_from_attempt(scl.load_attempt(scl.attempt_files()[0]), scl.unique("loop"))
        client.submit([job], timeout=10, wait_results=False)
        for n in range(4):
            s = fake_worker(c, "crash-%d" % n)
            self.assertEqual(take_job(s, 5)["attempt"], n + 1)
            s.close(0)
        c.start_worker("--heartbeat", "200")
        got = client.collect([job["job_id"]], timeout=10)
        rejected = got.rejected.get(job["job_id"], [])
        self.assertEqual([e["code"] for e in rejected], ["dead_letter"], got.messages)
        self.assertIn("delivered 4 times without a result; last: worker crash-3",
                      rejected[0]["message"])

    def test_crash_looping_worker_does_not_dead_letter_a_job(self):
        # tests/chaos/repro/dead_letter_undelivered.py: every second a
        # worker connects, says READY and closes its socket; the job goes to
        # several of them before a real worker starts.
        c = self.cluster(workers=0)
        client = c.client()

        def ready_and_die(n):
            scl.ready_and_die(c.ctx, c.work_ep, "crashloop-%d" % n)

        ready_and_die(0)
        time.sleep(0.5)
        job = scl.job_from_attempt(scl.load_attempt(scl.attempt_files()[0]), scl.unique("inno"))
        client.submit([job], timeout=10, wait_results=False)
        for n in range(1, 11):
            time.sleep(1.0)
            ready_and_die(n)
        c.start_worker()
        got = client.collect([job["job_id"]], timeout=20)
        self.assertNotIn(job["job_id"], got.rejected, got.messages)
        self.assertEqual(got.result(job["job_id"]).body["status"], "ok")


if __name__ == "__main__":
    unittest.main()

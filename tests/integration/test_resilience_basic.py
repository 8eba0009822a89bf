"""Basic resilience: a Redis outage does not crash the daemons, and a worker
stopped with SIGTERM drains its in-flight jobs before exiting 0."""

import signal
import time
import unittest

import scl


class RedisOutageTest(scl.ClusterTest):

    def test_daemons_survive_a_redis_restart_and_score_again(self):
        c = self.cluster(workers=1)
        client = c.client()
        attempt = scl.load_attempt(scl.attempt_files()[0])

        before = scl.job_from_attempt(attempt, scl.unique("before"))
        self.assertEqual(client.submit([before], timeout=30).result(before["job_id"]).body["status"], "ok")

        port = c.redis.port
        c.redis.kill()  # SIGKILL: no goodbye to the clients
        time.sleep(2)
        self.assertTrue(c.broker.alive(), "broker died when Redis went away:\n" + c.broker.tail())
        for w in c.workers:
            self.assertTrue(w.alive(), "%s died when Redis went away:\n%s" % (w.name, w.tail()))

        # While Redis is away nothing can be journaled: the broker answers a
        # SUBMIT with REJECTED journal_unavailable (retryable), not silence.
        during = scl.job_from_attempt(attempt, scl.unique("during"))
        got = client.submit([during], timeout=15, wait_results=False)
        self.assertNotIn(during["job_id"], got.accepted, "accepted a job it could not journal")
        self.assertEqual([e["code"] for e in got.rejected.get(during["job_id"], [])],
                         ["journal_unavailable"], got.messages)
        self.assertTrue(c.broker.alive(), c.broker.tail())

        c.redis.start()
        self.assertEqual(c.redis.port, port)
        # The new Redis is empty (no persistence in tests): push the rubric again.
        c.push_rubric()

        # The broker may need a moment to reconnect; until then it may turn
        # jobs away with a REJECTED, but it must answer, and once it has
        # reconnected every job is scored.
        deadline = time.monotonic() + 30
        scored = None
        answers = []
        while time.monotonic() < deadline:
            j = scl.job_from_attempt(attempt, scl.unique("after"))
            got = client.submit([j], timeout=30)
            answers.append(got.messages)
            if j["job_id"] in got.results:
                scored = got.result(j["job_id"]).body
                break
            time.sleep(1)
        self.assertIsNotNone(scored, "no job scored within 30 s of Redis coming back: %r" % answers[-3:])
        self.assertEqual(scored["status"], "ok", scl.brief(scored))

        batch = [scl.job_from_attempt(attempt, scl.unique("batch")) for _ in range(20)]
        got = client.submit(batch, timeout=60)
        for j in batch:
            self.assertEqual(got.result(j["job_id"]).body["status"], "ok")
        self.assertTrue(c.broker.alive())
        self.assertTrue(all(w.alive() for w in c.workers))


class WorkerDrainTest(scl.ClusterTest):

    def test_sigterm_worker_finishes_in_flight_jobs_and_exits_0(self):
        c = self.cluster(workers=0)
        w1 = c.start_worker(credit=50)
        client = c.client()
        attempts = [scl.load_attempt(p) for p in scl.attempt_files()]
        # Far more jobs than the worker can finish before the signal: it
        # holds a full window (50) when SIGTERM arrives.
        njobs = 6000
        jobs = [scl.job_from_attempt(attempts[i % len(attempts)], scl.unique("drain%04d" % i))
                for i in range(njobs)]
        ids = [j["job_id"] for j in jobs]
        for i in range(0, len(jobs), 1000):
            client.submit_async(jobs[i:i + 1000])

        # Stop the worker while it is busy: as soon as the first results arrive.
        early = scl.Collected()

        def first_results():
            while (m := client.recv(0.01)) is not None:
                early.add(m)
                if early.results:
                    return True
            return bool(early.results)
        scl.wait_for(first_results, 60, "the first results")
        w1.signal(signal.SIGTERM)
        t0 = time.monotonic()
        self.assertLess(len(early.results), njobs, "worker finished before SIGTERM; test is moot")
        rc = w1.wait(10)
        self.assertEqual(rc, 0, "worker exit code on SIGTERM:\n" + w1.tail())
        self.assertLess(time.monotonic() - t0, 10)

        # A second worker takes the rest of the queue.
        c.start_worker()
        rest = client.collect(set(ids) - set(early.results), timeout=240)
        for m in rest.messages:
            early.add(m)

        for job_id in ids:
            r = early.result(job_id).body  # exactly one RESULT each
            self.assertEqual(r["status"], "ok", scl.brief(r))
            # A drained job is answered by the worker that held it: never
            # requeued after a missed heartbeat, so never a second attempt.
            self.assertEqual(r["attempt"], 1, "job %s was redelivered: %r" % (job_id, scl.brief(r)))
        by_w1 = sum(1 for j in ids if early.result(j).body["worker"] == w1.worker_id)
        self.assertGreater(by_w1, 0)
        red = c.redis_client()
        self.assertEqual(red.call("XLEN", c.key("events")), len(jobs))


if __name__ == "__main__":
    scl.main()

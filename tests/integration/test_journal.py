"""The journal's form and the --no-journal switch, on real processes: one
journal entry per accepted batch, deleted once its last job is scored; a
broker SIGKILLed with a batch entry half done (some jobs scored, one journaled
again after a failed delivery) recovers exactly the jobs not yet scored, the
requeued one with its attempts; with --no-journal nothing is journaled or
deduped, and score events still reach the submitter and the events stream."""

import signal
import time
import unittest

import msgpack

import scl


def jobs_for(n, prefix):
    attempt = scl.load_attempt(scl.attempt_files()[0])
    return [scl.job_from_attempt(attempt, scl.unique(prefix)) for _ in range(n)]


class BatchEntryTest(scl.ClusterTest):

    def test_one_entry_per_batch_deleted_when_its_last_job_is_scored(self):
        c = self.cluster(workers=0)
        r = c.redis_client()
        jobs = jobs_for(12, "batch")
        got = c.client().submit(jobs, timeout=10, wait_results=False)
        self.assertEqual(sorted(got.accepted), sorted(j["job_id"] for j in jobs))
        self.assertEqual(r.call("XLEN", c.key("journal:main")), 1,
                         "a batch accepted in one turn is one journal entry")
        c.start_worker()
        client = c.client()
        got = client.submit(jobs, timeout=30)  # resubmitted: duplicates, results routed here
        for j in jobs:
            self.assertEqual(got.result(j["job_id"]).body["status"], "ok")
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 0, 10,
                     "the entry deleted after its last job")
        self.assertEqual(r.call("XLEN", c.key("events")), 12)

    def test_sigkill_recovers_unscored_jobs_of_a_batch_entry_and_requeued_attempts(self):
        c = self.cluster(workers=0, broker_args=("--heartbeat", "200"))
        r = c.redis_client()
        jobs = jobs_for(20, "rec")
        ids = [j["job_id"] for j in jobs]
        got = c.client().submit(jobs, timeout=10, wait_results=False)
        self.assertEqual(sorted(got.accepted), sorted(ids))
        self.assertEqual(r.call("XLEN", c.key("journal:main")), 1)
        # One delivery fails: a worker takes the first job and goes silent.
        fake = scl.FakeWorker(c.work_ep, c.ctx, credit=1)
        taken = fake.take(1, timeout=10)[0]["job"]["job_id"]
        self.assertEqual(taken, ids[0])
        # Heard from after READY: its death is charged to the job it held.
        fake._send("HEARTBEAT", {"inflight": 1})
        time.sleep(0.3)
        fake.sock.close(0)
        scl.wait_for(lambda: "event=worker.lost" in c.broker.log()
                     or "event=worker.gone" in c.broker.log(), 10, "the broker to drop the worker")
        self.assertNotIn("event=worker.died_at_once", c.broker.log())
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 2, 10,
                     "the requeued job journaled again in an entry of its own")
        # Three jobs were scored before the crash, but their entry stayed
        # (the broker deletes an entry only when its last job is gone).
        done = ids[5:8]
        for jid in done:
            ev = msgpack.packb({"v": 1, "job_id": jid, "status": "ok"}, use_bin_type=True)
            r.call("SET", c.key("done:" + jid), ev, "EX", 3600)
        c.broker.signal(signal.SIGKILL)
        c.broker.wait(5)
        c.start_broker("--heartbeat", "200", wait=False)
        c.broker.wait_log("event=broker.ready", count=2)
        ready = [l for l in c.broker.log().splitlines() if "event=broker.ready" in l][-1]
        self.assertIn(" queued=17 ", ready + " ", "20 jobs, 3 of them done: 17 to hold")
        c.start_worker()
        client = c.client()
        got = client.submit(jobs, timeout=60)
        for jid in ids:
            res = got.result(jid)
            self.assertIsNotNone(res, jid)
            self.assertEqual(res.body["status"], "ok", scl.brief(res.body))
        for jid in done:
            acc = got.accepted[jid][0]
            self.assertEqual((acc["duplicate"], acc["state"]), (True, "done"))
        self.assertEqual(got.result(ids[0]).body["attempt"], 2,
                         "the failed delivery survived the restart")
        self.assertEqual(got.result(ids[1]).body["attempt"], 1)
        scl.wait_for(lambda: r.call("XLEN", c.key("events")) == 17, 20, "17 score events")
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 0, 10,
                     "every entry deleted after its jobs")
        events = r.call("XRANGE", c.key("events"), "-", "+")
        scored = sorted(e[1][1].decode() for e in events)
        self.assertEqual(scored, sorted(set(ids) - set(done)), "each job scored exactly once")


class RedisStallTest(scl.ClusterTest):

    def test_redis_stalled_mid_run_every_job_scored_once(self):
        # Redis frozen with commands in flight: the broker gives up on them
        # after --redis-timeout, keeps results in memory, refuses new jobs,
        # and once Redis answers again stores them; a result whose store
        # went through before the freeze but whose answer was lost is still
        # sent, once.
        c = self.cluster(workers=1, broker_args=("--redis-timeout", "400"))
        client = c.client()
        jobs = jobs_for(300, "stall")
        ids = [j["job_id"] for j in jobs]
        got = scl.Collected()
        for i in range(0, 270, 30):
            client.submit_async(jobs[i:i + 30])
        scl.wait_for(lambda: bool(self._pump(client, got)), 30, "the first results")
        c.redis.proc.signal(signal.SIGSTOP)
        try:
            client.submit_async(jobs[270:])  # journaled while Redis is frozen: no answer
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                self._pump(client, got)
        finally:
            c.redis.proc.signal(signal.SIGCONT)
        c.broker.wait_log("event=redis.lost", timeout=10)
        # Jobs refused meanwhile are submitted again until accepted.
        resent = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._pump(client, got)
            missing = [j for j in jobs if j["job_id"] not in got.results]
            if not missing:
                break
            refused = [j for j in missing
                       if len(got.rejected.get(j["job_id"], [])) > resent.get(j["job_id"], 0)]
            for j in refused:
                resent[j["job_id"]] = resent.get(j["job_id"], 0) + 1
            if refused:
                time.sleep(0.2)
                client.submit_async(refused)
        self._pump(client, got)
        self.assertEqual(sorted(got.results), sorted(ids))
        for jid in ids:
            got.result(jid)  # exactly one RESULT each
        r = c.redis_client()
        scl.wait_for(lambda: r.call("XLEN", c.key("events")) == len(ids), 20, "an event per job")
        events = r.call("XRANGE", c.key("events"), "-", "+")
        self.assertEqual(sorted(e[1][1].decode() for e in events), sorted(ids),
                         "one event per job in the stream")
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 0, 20,
                     "the journal emptied")

    @staticmethod
    def _pump(client, got):
        n = 0
        while (m := client.recv(0.05)) is not None:
            got.add(m)
            n += 1
        return len(got.results)


class NoJournalTest(scl.ClusterTest):

    def test_no_journal_writes_nothing_to_the_journal_and_results_still_flow(self):
        c = self.cluster(workers=1, broker_args=("--no-journal",))
        self.assertIn("event=broker.no_journal", c.broker.log())
        sub = c.subscriber()
        time.sleep(0.3)  # let the subscription reach the broker
        client = c.client()
        jobs = jobs_for(25, "nj")
        got = client.submit(jobs, timeout=30)
        for j in jobs:
            self.assertEqual(got.result(j["job_id"]).body["status"], "ok")
        r = c.redis_client()
        self.assertEqual(r.call("KEYS", c.key("journal*")), [], "no journal with --no-journal")
        self.assertEqual(r.call("KEYS", c.key("done:*")), [], "no done-set with --no-journal")
        self.assertEqual(r.call("XLEN", c.key("events")), 25)
        published = set()
        deadline = time.monotonic() + 10
        while len(published) < 25 and time.monotonic() < deadline:
            if sub.poll(500):
                frames = sub.recv_multipart()
                published.add(scl.unpack(frames[-1])["job_id"])
        self.assertEqual(published, {j["job_id"] for j in jobs})
        # The documented loss: a finished job submitted again is graded again.
        again = client.submit(jobs[:1], timeout=30)
        acc = again.accepted[jobs[0]["job_id"]][0]
        self.assertFalse(acc.get("duplicate"), acc)
        self.assertEqual(again.result(jobs[0]["job_id"]).body["status"], "ok")
        scl.wait_for(lambda: r.call("XLEN", c.key("events")) == 26, 10, "a second event")
        self.assertEqual(r.call("KEYS", c.key("journal*")), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

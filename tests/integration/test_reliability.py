"""Reliability rules one at a time, on real processes: a killed worker's jobs
come back at once with their attempt raised; a grading past its time-to-run
is abandoned and the job dead-lettered after --max-attempts; the dead-letter
commands; a broker SIGKILLed with jobs queued loses none of them, and a
waiting `scoreline submit` still gets every result."""

import os
import signal
import subprocess
import time
import unittest

import scl


def poison_job(attempt, job_id, ttr_ms=300):
    # The worker sleeps far past the job's own time-to-run for ids containing
    # "poison" (--fault-match), so every delivery ends without a result.
    return scl.job_from_attempt(attempt, job_id, ttr_ms=ttr_ms)


class WorkerLossTest(scl.ClusterTest):

    def test_requeues_jobs_of_killed_worker_with_attempt_raised(self):
        # Heartbeats of 500 ms (liveness 1.5 s): short enough to show the
        # recovery below, long enough that a healthy worker on a busy machine
        # is not taken for lost (which would deliver its job a third time).
        c = self.cluster(workers=0, broker_args=("--heartbeat", "500"))
        attempt = scl.load_attempt(scl.attempt_files()[0])
        # A worker that holds its jobs for a long time, then dies holding them.
        doomed = c.start_worker("--fault-match", "held", "--fault-delay-ms", "60000",
                                "--heartbeat", "500", credit=4)
        client = c.client()
        jobs = [scl.job_from_attempt(attempt, scl.unique("held")) for _ in range(4)]
        got = client.submit(jobs, timeout=10, wait_results=False)
        self.assertEqual(sorted(got.accepted), sorted(j["job_id"] for j in jobs))
        time.sleep(0.5)  # delivered and in flight
        doomed.signal(signal.SIGKILL)
        doomed.wait(5)
        killed_at = time.monotonic()
        # A healthy worker (the fault does not match its jobs) takes over.
        c.start_worker("--heartbeat", "500", "--fault-match", "never-matches")
        got = client.collect([j["job_id"] for j in jobs], timeout=20)
        recovered = time.monotonic() - killed_at
        for j in jobs:
            body = got.result(j["job_id"]).body
            self.assertEqual(body["status"], "ok", scl.brief(body))
            self.assertEqual(body["attempt"], 2, "a redelivered job carries attempt 2")
        # liveness is 3 x 500 ms here: recovery well within a few seconds
        self.assertLess(recovered, 5.0, "jobs of a dead worker took %.1f s to come back" % recovered)
        # noticed by its closed connection (gone) or by its silence (lost)
        log = c.broker.log()
        self.assertTrue("event=worker.gone" in log or "event=worker.lost" in log, log)


class RunawayGradingTest(scl.ClusterTest):

    def test_grading_past_time_to_run_is_abandoned_and_dead_lettered(self):
        c = self.cluster(workers=0, broker_args=("--heartbeat", "100", "--max-attempts", "3"))
        w = c.start_worker("--fault-match", "poison", "--fault-delay-ms", "5000",
                           "--threads", "2", "--heartbeat", "100")
        attempt = scl.load_attempt(scl.attempt_files()[0])
        client = c.client()
        bad = poison_job(attempt, scl.unique("poison"))
        good = scl.job_from_attempt(attempt, scl.unique("good"))
        got = client.submit([bad, good], timeout=10, wait_results=False)
        self.assertIn(bad["job_id"], got.accepted)
        # The healthy job is scored while the poison one is being retried.
        got = client.collect([good["job_id"], bad["job_id"]], timeout=30, into=got)
        self.assertEqual(got.result(good["job_id"]).body["status"], "ok")
        self.assertNotIn(bad["job_id"], got.results, "a dead-lettered job has no score event")
        codes = [e["code"] for e in got.rejected.get(bad["job_id"], [])]
        self.assertEqual(codes, ["dead_letter"], got.messages)

        # In the dead-letter stream with its attempts and reason, nowhere else.
        listed = c.cli("dead", "list")
        self.assertEqual(listed.rc, 0, listed)
        entries = [e for e in listed.json_lines() if e["job_id"] == bad["job_id"]]
        self.assertEqual(len(entries), 1, listed.stdout)
        self.assertEqual(entries[0]["attempts"], 3)
        self.assertIn("time-to-run", entries[0]["reason"])
        r = c.redis_client()
        # (entries of finished jobs are deleted with the broker's next Redis call or tick)
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 0, 5,
                     "the dead job gone from the journal")
        events = r.call("XRANGE", c.key("events"), "-", "+")
        self.assertNotIn(bad["job_id"].encode(), [e[1][1] for e in events])
        # The worker abandoned each runaway grading and kept serving.
        self.assertGreaterEqual(w.log().count("event=job.abandoned"), 3, w.tail())
        self.assertTrue(w.alive())
        self.assertIn("event=job.dead_letter", c.broker.log())

    def test_dead_retry_scores_the_job_and_purge_removes_entries(self):
        c = self.cluster(workers=0, broker_args=("--heartbeat", "100", "--max-attempts", "1"))
        c.start_worker("--fault-match", "poison", "--fault-delay-ms", "3000", "--heartbeat", "100")
        attempt = scl.load_attempt(scl.attempt_files()[0])
        client = c.client()
        jobs = [poison_job(attempt, scl.unique("poison")) for _ in range(2)]
        got = client.submit(jobs, timeout=20, wait_results=False)
        client.collect([j["job_id"] for j in jobs], timeout=20, into=got)
        self.assertEqual(sorted(got.rejected), sorted(j["job_id"] for j in jobs))
        shown = c.cli("dead", "show", jobs[0]["job_id"])
        self.assertEqual(shown.rc, 0, shown)
        entry = shown.json_lines()[0]
        self.assertEqual(entry["job"]["job_id"], jobs[0]["job_id"])
        self.assertEqual(c.cli("dead", "show", "no-such-job").rc, 1)

        # Retry the first on a worker without the fault: it is scored once.
        for w in list(c.workers):
            c.stop_worker(w)
        # Heartbeats as often as the broker's (100 ms, liveness 3): a worker
        # on the default 1 s would be declared lost while it grades.
        c.start_worker("--heartbeat", "100")
        r = c.redis_client()
        jid = jobs[0]["job_id"]

        def scored_or_given_up():
            if r.call("XLEN", c.key("events")) == 1:
                return True
            return jid in [e["job_id"] for e in c.cli("dead", "list").json_lines()]
        # With --max-attempts 1 and liveness 300 ms, a machine too busy to
        # run the worker for 300 ms gives the job up again: retry it then.
        for _ in range(3):
            retried = c.cli("dead", "retry", jid)
            self.assertEqual(retried.rc, 0, retried)
            self.assertEqual(retried.json_lines()[0]["status"], "requeued")
            scl.wait_for(scored_or_given_up, 20, "the retried job's event")
            if r.call("XLEN", c.key("events")) == 1:
                break
        self.assertEqual(r.call("XLEN", c.key("events")), 1, "the retried job's event")
        ev = scl.unpack(r.call("XRANGE", c.key("events"), "-", "+")[0][1][3])
        self.assertEqual(ev["job_id"], jobs[0]["job_id"])
        self.assertEqual(ev["status"], "ok")
        left = [e["job_id"] for e in c.cli("dead", "list").json_lines()]
        self.assertEqual(left, [jobs[1]["job_id"]])

        purged = c.cli("dead", "purge", "--all")
        self.assertEqual(purged.rc, 0, purged)
        self.assertEqual(purged.stdout.decode().strip(), "1")
        self.assertEqual(c.cli("dead", "list").json_lines(), [])


class BrokerRestartTest(scl.ClusterTest):

    def test_broker_sigkill_loses_no_accepted_job_and_submit_gets_every_result(self):
        c = self.cluster(workers=0)
        attempts = [scl.load_attempt(p) for p in scl.attempt_files()]
        files = []
        for i in range(30):
            a = dict(attempts[i % len(attempts)])
            a["job_id"] = scl.unique("restart")
            a.pop("expected", None)
            path = os.path.join(self.tmpdir, "a%02d.json" % i)
            with open(path, "w") as f:
                import json
                json.dump(a, f)
            files.append(path)
        # Submit with no worker running: everything is accepted and queued.
        proc = subprocess.Popen(
            [scl.binary("scoreline"), "--broker", c.submit_ep, "--redis", c.redis.url,
             "--prefix", c.prefix, "submit", "--timeout", "60"] + files,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=scl.process_env(), text=True)
        r = c.redis_client()
        scl.wait_for(lambda: len(set(scl.journal_jobs(r, c.key("journal:main")))) == 30, 20,
                     "30 jobs journaled")
        c.broker.signal(signal.SIGKILL)
        c.broker.wait(5)
        c.start_broker(wait=False)
        # (the restarted broker appends to the same log file)
        c.broker.wait_log("event=broker.ready", count=2)
        self.assertIn("event=journal.recovered jobs=30", c.broker.log())
        c.start_worker()
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, err)
        lines = [l for l in out.splitlines() if l.strip()]
        import json
        results = [json.loads(l) for l in lines]
        self.assertEqual(sorted(x["job_id"] for x in results),
                         sorted(json.load(open(p))["job_id"] for p in files))
        self.assertTrue(all(x["status"] == "ok" for x in results), out)
        self.assertEqual(r.call("XLEN", c.key("events")), 30)
        scl.wait_for(lambda: r.call("XLEN", c.key("journal:main")) == 0, 5,
                     "every recovered job's entry deleted")


if __name__ == "__main__":
    unittest.main(verbosity=2)

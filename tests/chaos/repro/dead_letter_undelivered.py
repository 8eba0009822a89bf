#!/usr/bin/python3
"""Repro: a job that no worker ever received is dead-lettered.

A worker in a crash loop: every second a worker connects, says READY and
dies at once. The broker keeps such a worker for liveness x heartbeat
(3 s) and dispatches jobs to it meanwhile; when it is declared lost, each
of those jobs is charged a delivery. After three such "deliveries" a job
that never reached a live process goes to <prefix>dead with
"delivered 3 times without a result; last: worker ... stopped answering
heartbeats", and its submitter gets REJECTED dead_letter. Under
tests/chaos/chaos.py (a SIGKILL every 1-2 s, credit 16) the same happens to
about 1% of the jobs.

Expected (DESIGN.md section 3, issue #6 proof: 0 lost): the job is scored
by the live worker started at the end. Exit 0 when it is, 1 when it was
dead-lettered (the bug), 2 on a harness error.
Run: SCORELINE_BIN_DIR=build /usr/bin/python3 tests/chaos/repro/dead_letter_undelivered.py
"""
import time

import repro_common
from repro_common import scl


def main(c):
    c.start(workers=0)
    c.push_rubric()

    def ready_and_die(n):
        scl.ready_and_die(c.ctx, c.work_ep, "crashloop-%d" % n)

    ready_and_die(0)
    time.sleep(0.5)
    client = c.client()
    job = repro_common.sample_job("innocent-1")
    client.submit([job], timeout=10, wait_results=False)
    for n in range(1, 11):
        time.sleep(1.0)
        ready_and_die(n)
    c.start_worker()
    got = client.collect([job["job_id"]], timeout=20)
    for line in c.broker.log().splitlines():
        if "event=worker.lost" in line or "event=worker.gone" in line or "event=job.dead_letter" in line:
            print(line)
    if job["job_id"] in got.rejected:
        print("BUG: dead-lettered though no worker ever received it: %r"
              % got.rejected[job["job_id"]])
        return 1
    print("ok: %s scored (%s)" % (job["job_id"], got.result(job["job_id"]).body["status"]))
    return 0


if __name__ == "__main__":
    repro_common.run(main)

#!/usr/bin/python3
"""Repro: a dead-lettered job still gets a score event from a late result.

Worker A takes job late-1 (it sleeps 4 s before grading, via the testing
flags) and is SIGSTOPped. After 3 s of silence the broker declares A lost
and requeues the job; with --max-attempts 1 the next dispatch sends it to
<prefix>dead and the submitter gets REJECTED dead_letter. Then A is
SIGCONTed, finishes the grading and returns its RESULT: the broker stores
it (SET NX on done:<id> succeeds, nothing claimed the id) and emits a score
event. The job now has two contradictory outcomes: a dead letter and a
score. The chaos run shows the same with the default --max-attempts 3
(a SIGSTOPped worker's jobs dead-lettered meanwhile, then scored when it
resumes).

Expected: one outcome per job id. Once a job is dead-lettered, a late
result for it is dropped (no event), or it is not dead-lettered. Exit 0
when the stream has no event for late-1, 1 when it has (the bug), 2 on a
harness error.
Run: SCORELINE_BIN_DIR=build /usr/bin/python3 tests/chaos/repro/dead_then_scored.py
"""
import signal
import time

import repro_common


def main(c):
    c.start(workers=0, broker_args=("--max-attempts", "1"))
    c.push_rubric()
    a = c.start_worker("--fault-match", "late", "--fault-delay-ms", "4000")
    client = c.client()
    job = repro_common.sample_job("late-1")
    client.submit([job], timeout=10, wait_results=False)
    time.sleep(0.5)
    a.signal(signal.SIGSTOP)
    c.broker.wait_log("event=worker.lost", timeout=10)
    b = c.start_worker()  # gives the broker credit to dispatch (and dead-letter) the job
    got = client.collect([job["job_id"]], timeout=10)
    a.signal(signal.SIGCONT)
    time.sleep(5)
    red = c.redis_client()
    dead = [f for _, f in red.call("XRANGE", c.key("dead"), "-", "+") or []]
    events = [f for _, f in red.call("XRANGE", c.key("events"), "-", "+") or []]
    print("submitter:", got.messages)
    print("dead letters: %d, score events: %d" % (len(dead), len(events)))
    for line in c.broker.log().splitlines():
        if "late-1" in line or "worker.lost" in line:
            print(line)
    del b
    if dead and events:
        print("BUG: late-1 is in %sdead and has a score event in %sevents"
              % (c.prefix, c.prefix))
        return 1
    print("ok: one outcome")
    return 0


if __name__ == "__main__":
    repro_common.run(main)

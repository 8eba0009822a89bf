#!/usr/bin/python3
"""Repro: a job's own ttr_ms is forgotten when the broker restarts.

A job submitted with ttr_ms 1000 is recovered from the journal by a new
broker with the broker's default time-to-run (--ttr, 30000 ms): the JOB
sent to the worker and the broker's expiry both use 30000, so a grading
that never ends holds its worker 30 s instead of 1 s per delivery (and a
poison job reaches the dead-letter stream after 90 s instead of ~3 s).

Expected (PROTOCOL.md 4.1 ttr_ms, 6.8): the recovered job keeps ttr_ms
1000. Exit 0 when the broker expires it within 6 s of the worker taking it,
1 otherwise (the bug), 2 on a harness error.
Run: SCORELINE_BIN_DIR=build /usr/bin/python3 tests/chaos/repro/ttr_after_restart.py
"""
import os
import signal
import time

import repro_common


def main(c):
    c.start(workers=0)
    c.push_rubric()
    client = c.client()
    job = repro_common.sample_job("slow-1", ttr_ms=1000)
    client.submit([job], timeout=10, wait_results=False)
    c.broker.p.send_signal(signal.SIGKILL)
    c.broker.p.wait(5)
    os.rename(c.broker.log_path, c.broker.log_path + ".0")
    c.start_broker("--ttr", "30000")
    w = c.start_worker("--fault-match", "slow", "--fault-delay-ms", "600000")
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and "event=job.ttr_expired" not in c.broker.log():
        time.sleep(0.2)
    for line in c.broker.log().splitlines() + w.log().splitlines():
        if "slow-1" in line or "journal.recovered" in line:
            print(line)
    if "event=job.ttr_expired job_id=slow-1" in c.broker.log() and \
            "ttr_ms=1000" in c.broker.log():
        print("ok: the recovered job kept ttr_ms=1000")
        return 0
    print("BUG: no time-to-run expiry within 6 s: the recovered job lost its ttr_ms=1000 "
          "(the broker uses --ttr 30000)")
    return 1


if __name__ == "__main__":
    repro_common.run(main)

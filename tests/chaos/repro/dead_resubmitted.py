#!/usr/bin/python3
"""Repro: a dead-lettered job id is forgotten, so submitting it again grades
it again.

Job poison-1 (ttr_ms 1000, a grading that never ends via the testing flags,
broker --max-attempts 1) goes to <prefix>dead and its submitter gets
REJECTED dead_letter. Submitting the same id again is ACCEPTED as a new job
(duplicate false) and delivered again, and a second dead letter follows. A
client that lost the REJECTED in a broker restart and re-sends the id (what
PROTOCOL.md asks it to do for ids without a result) therefore re-runs a
dead-lettered job; in the chaos run such a job was then scored as well.

Expected (PROTOCOL.md 6.2: an id already known is not graded again): the
second SUBMIT is answered from what is known about the id (a duplicate, or
the dead_letter rejection again) and nothing is delivered again. Exit 0
when so, 1 when the id is accepted as new (the bug), 2 on a harness error.
Run: SCORELINE_BIN_DIR=build /usr/bin/python3 tests/chaos/repro/dead_resubmitted.py
"""
import time

import repro_common
from repro_common import scl


def main(c):
    c.start(workers=0, broker_args=("--max-attempts", "1"))
    c.push_rubric()
    c.start_worker("--fault-match", "poison", "--fault-delay-ms", "600000")
    client = c.client()
    job = repro_common.sample_job("poison-1", ttr_ms=1000)
    first = client.submit([job], timeout=20)
    print("first SUBMIT:", first.messages)
    again = scl.Collected()
    seq = client.submit_async([job])
    client.collect(seqs=[seq], timeout=10, results=False, into=again)
    time.sleep(4)
    client.collect(timeout=1, into=again)
    print("second SUBMIT:", again.messages)
    red = c.redis_client()
    ndead = red.call("XLEN", c.key("dead"))
    print("dead letters for poison-1: %d" % ndead)
    acc = again.accepted.get("poison-1", [])
    if acc and not acc[0]["duplicate"] or ndead > 1:
        print("BUG: the dead-lettered id was accepted as a new job and delivered again")
        return 1
    print("ok: answered from what is known")
    return 0


if __name__ == "__main__":
    repro_common.run(main)

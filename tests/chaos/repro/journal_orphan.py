#!/usr/bin/python3
"""Repro: a SUBMIT journaled by Redis whose reply is lost leaves an orphan
journal entry.

The broker talks to Redis through a small TCP proxy. When the broker's
journal script for job orphan-1 goes through, the proxy lets Redis run it
and then closes the connection before the reply reaches the broker: what a
Redis SIGKILL right after an fsync looks like (the chaos run hit it: the
batch logged as submit.unjournaled at the Redis kill was in the journal).
The broker answers REJECTED journal_unavailable; the client retries the
same id, it is journaled again under a new entry, scored once, and only
that new entry is deleted. The first entry stays in <prefix>journal:<name>
for good; the next broker start recovers it and grades the job again (its
result then only loses the dedupe while done:<id> lives, --dedupe-ttl).

Expected: within 15 s of the job's score event the journal holds nothing
for it. Exit 0 when the journal is empty, 1 when an entry is left (the
bug), 2 on a harness error.
Run: SCORELINE_BIN_DIR=build /usr/bin/python3 tests/chaos/repro/journal_orphan.py
"""
import select
import socket
import threading
import time

import repro_common
from repro_common import scl


class LosingProxy(threading.Thread):
    """Forwards TCP to Redis; once, drops the reply to a command holding
    `needle` and closes that connection."""

    def __init__(self, redis_port, needle):
        super().__init__(daemon=True)
        self.redis_port = redis_port
        self.needle = needle
        self.fired = False
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]

    def run(self):
        while True:
            c, _ = self.lsock.accept()
            threading.Thread(target=self.pipe, args=(c,), daemon=True).start()

    def pipe(self, c):
        r = socket.create_connection(("127.0.0.1", self.redis_port))
        seen = b""
        try:
            while True:
                rd, _, _ = select.select([c, r], [], [])
                if c in rd:
                    data = c.recv(65536)
                    if not data:
                        return
                    r.sendall(data)
                    seen = (seen + data)[-1000000:]
                    if not self.fired and self.needle in seen:
                        self.fired = True
                        time.sleep(0.3)  # Redis runs the script and replies
                        return           # ... and the reply never arrives
                if r in rd:
                    data = r.recv(65536)
                    if not data:
                        return
                    c.sendall(data)
        finally:
            c.close()
            r.close()


def main(c):
    c.start_redis()
    proxy = LosingProxy(c.redis.port, b"orphan-1")
    proxy.start()
    direct = c.redis.url
    c.redis.url_override = "redis://127.0.0.1:%d/0" % proxy.port
    argv = c.broker_argv()
    argv[argv.index(direct)] = c.redis.url_override
    c.broker = scl.Proc("broker", argv, c.tmpdir)
    c.broker.wait_log("event=broker.ready")
    c.start_worker()
    c.push_rubric()
    client = c.client()
    job = repro_common.sample_job("orphan-1")
    got = scl.Collected()
    for _ in range(40):
        seq = client.submit_async([job])
        client.collect(seqs=[seq], timeout=30, results=False, into=got)
        if job["job_id"] in got.accepted:
            break
        time.sleep(0.5)
    client.collect([job["job_id"]], timeout=30, into=got)
    answers = got.messages
    red = c.redis_client()
    # Allow the broker time to clean up after itself (a periodic sweep).
    deadline = time.monotonic() + 15
    while True:
        left = red.call("XRANGE", c.key("journal:main"), "-", "+") or []
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print("answers:", answers[:3])
    for line in c.broker.log().splitlines():
        if "redis." in line or "unjournaled" in line or "journal." in line:
            print(line)
    print("journal entries after the score event: %d %s"
          % (len(left), [dict(zip(f[0::2], f[1::2])).get(b"job_id") for _, f in left]))
    if left:
        print("BUG: an orphan journal entry for orphan-1 is left")
        return 1
    print("ok: journal empty")
    return 0


if __name__ == "__main__":
    repro_common.run(main)

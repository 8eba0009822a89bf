"""celery_bench.py - Celery no-op tasks on Redis, for the side-by-side in BENCHMARKS.md.

    python3 celery_bench.py load PORT N     send N no-op tasks (apply_async)
    python3 celery_bench.py wait PORT N     poll the completion counter; print the result
    celery -A celery_bench worker ...       the worker (BENCH_REDIS_PORT set)

Settings for short tasks, after Celery's optimisation guide: results ignored, no
gossip/mingle/heartbeat, early acks, a large prefetch. Completions are counted in
each worker process and added to one Redis key every 10 ms by a background
thread; the waiter times the first to the last completion.
"""
import os
import sys
import threading
import time

import redis
from celery import Celery
from celery.signals import task_postrun

PORT = int(os.environ.get("BENCH_REDIS_PORT", sys.argv[2] if len(sys.argv) > 2 else 6379))
URL = f"redis://127.0.0.1:{PORT}/0"
app = Celery("celery_bench", broker=URL)
app.conf.update(task_ignore_result=True, task_acks_late=False,
                worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "128")),
                broker_pool_limit=10, worker_send_task_events=False,
                task_serializer="json", accept_content=["json"])


@app.task(name="noop")
def noop():
    return None


_count = 0
_lock = threading.Lock()
_flusher = None


def _flush_loop():
    global _count
    r = redis.Redis.from_url(URL)
    while True:
        time.sleep(0.01)
        with _lock:
            n, _count = _count, 0
        if n:
            r.incrby("bench:done", n)


@task_postrun.connect
def _counted(**_):
    global _count, _flusher
    with _lock:
        _count += 1
        if _flusher is None:  # one per worker process, started in that process
            _flusher = threading.Thread(target=_flush_loop, daemon=True)
            _flusher.start()


def main():
    mode, n = sys.argv[1], int(sys.argv[3])
    r = redis.Redis.from_url(URL)
    if mode == "load":
        r.delete("bench:done")
        t0 = time.monotonic()
        for _ in range(n):
            noop.apply_async()
        print(f"sent {n} tasks in {time.monotonic() - t0:.2f} s", file=sys.stderr)
    elif mode == "wait":
        first = None
        deadline = time.monotonic() + 300
        while True:
            now = time.monotonic()
            done = int(r.get("bench:done") or 0)
            if done and first is None:
                first = now
            if done >= n:
                span = now - first
                print(f"peer system=celery mode=drain jobs={done} seconds={span:.3f} "
                      f"jobs_per_s={done / span:.0f} settings={os.environ.get('SETTINGS', '')}")
                return 0
            if now > deadline:
                print(f"celery_bench: only {done} of {n} tasks done", file=sys.stderr)
                return 1
            time.sleep(0.005)
    return 0


if __name__ == "__main__":
    sys.exit(main())

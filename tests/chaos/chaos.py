#!/usr/bin/python3
"""chaos.py - scoreline under faults, on real processes.

Starts a private redis-server (AOF on, appendfsync always), one
scoreline-broker on fixed free ports and N scoreline-workers, pushes the
csm-smb rubric, and submits jobs built from the pack's sample attempts at a
steady rate while it:

  - SIGKILLs a random worker every 1-2 s and starts a new one,
  - SIGSTOPs another worker for a while (10 s in the long form), then SIGCONTs it,
  - SIGKILLs the broker once and starts it again on the same ports,
  - SIGKILLs Redis once and starts it again on the same port and AOF dir,
  - SIGTERMs one worker (graceful drain: exit 0 within 10 s),
  - submits a few poison jobs (grading that never ends, a short ttr_ms) that
    must end in the dead-letter stream and nowhere else.

The submitter is a Lazy Pirate client written from proto/PROTOCOL.md: it
re-sends every job id still without a final answer after a few seconds of
silence (with back-off), and retries retryable rejections, until a deadline.

Then it checks, exactly: one score event per job in <prefix>events (no job
lost, no duplicate), poison jobs only in <prefix>dead, each event's bytes
equal to what the submitter received, each result's bytes equal to an
offline `scoreline grade --msgpack` of the same attempt (and the digests
equal), the journal empty, a resubmission of finished ids answered from the
done-set without a new event, and every daemon draining on SIGTERM with exit
0 within 10 s. It prints redeliveries, dead letters, the time to recover
after each fault and the submit-to-event latency. Exit status 0 when every
check passed, 1 otherwise (daemon logs are printed), 2 on bad usage.

Short form (the default, run by tests/integration/test_chaos_short.py):
2,000 jobs over 60 s. Long form: --long (10,000 jobs over 150 s), see
tests/chaos/README.md and tests/chaos/run-long.

Binaries come from SCORELINE_BIN_DIR (default build/); use Debian's
/usr/bin/python3 (python3-zmq, python3-msgpack).
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import msgpack  # noqa: E402
import zmq  # noqa: E402

import scl  # noqa: E402

RETRYABLE = {"journal_unavailable", "queue_full", "shutting_down", "internal_error"}
POISON_TAG = "poison"
POISON_DELAY_MS = 3600000  # a grading that never ends (one hour)


# ---- small helpers ----------------------------------------------------------

def log(msg):
    sys.stdout.write("[%7.2f] %s\n" % (time.monotonic() - T0, msg))
    sys.stdout.flush()


T0 = time.monotonic()


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def fmt_s(v):
    return "n/a" if v is None else "%.2fs" % v


def log_ts(line):
    """Unix time of a daemon log line (ts=2026-01-01T00:00:00.000000Z)."""
    m = re.match(r"ts=(\S+)", line)
    if not m:
        return None
    d = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def raw_field(body, key):
    """The exact bytes of a top-level map value in a msgpack body."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(body)
    n = u.read_map_header()
    for _ in range(n):
        k = u.unpack()
        start = u.tell()
        u.skip()
        if k == key:
            return body[start:u.tell()]
    return None


def http_get(port, path, timeout=1.0):
    """(status, body text); (None, error) when nothing answered."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except Exception as e:  # connection refused, timeout
        return None, str(e)


def parse_metrics(text):
    out = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


# ---- Redis with AOF -------------------------------------------------------------

class AofRedis:
    """A private redis-server with appendonly yes / appendfsync always, that
    restarts on the same port with the same data directory."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.dir = os.path.join(tmpdir, "redis-data")
        os.makedirs(self.dir, exist_ok=True)
        self.port = scl.free_port()
        self.proc = None
        self.procs = []

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        argv = [shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "always",
                "--maxmemory-policy", "noeviction", "--dir", self.dir,
                "--daemonize", "no", "--protected-mode", "yes"]
        self.proc = scl.Proc("redis-%d" % len(self.procs), argv, self.tmpdir)
        self.procs.append(self.proc)
        return self.proc

    def ping(self):
        try:
            c = scl.RespClient(self.port, timeout=0.5)
            try:
                return c.call("PING") == "PONG"
            finally:
                c.close()
        except (OSError, scl.RedisError):
            return False

    def wait_up(self, timeout):
        scl.wait_for(self.ping, timeout, "redis-server on port %d" % self.port)

    def kill(self):
        if self.proc and self.proc.alive():
            self.proc.p.send_signal(signal.SIGKILL)
            self.proc.p.wait(5)

    def stop(self):
        if self.proc and self.proc.alive():
            try:
                c = scl.RespClient(self.port, timeout=1)
                c.sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
                c.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for p in self.procs:
            p.kill()


# ---- the submitter: a Lazy Pirate client ----------------------------------------

class JobState:
    __slots__ = ("job", "first_sent", "last_sent", "sends", "next_resend", "final",
                 "t_final", "result_hash", "emissions", "replays", "accepted", "rejections",
                 "retry_backoff", "attempt_idx")

    def __init__(self, job, attempt_idx):
        self.job = job
        self.attempt_idx = attempt_idx
        self.first_sent = None
        self.last_sent = None
        self.sends = 0
        self.next_resend = None
        self.final = None        # "result", "dead", "rejected"
        self.t_final = None
        self.result_hash = None  # sha256 of the RESULT body
        self.emissions = 0       # RESULTs pushed to us by the broker
        self.replays = 0         # stored RESULTs answering our own resubmission
        self.accepted = 0
        self.rejections = []
        self.retry_backoff = 0.25


class Submitter:
    """DEALER on the broker's submit endpoint. Sends jobs in SUBMIT batches,
    re-sends ids without a final answer after resend_after seconds of
    silence (doubling up to resend_max), retries retryable rejections with
    back-off, and records every answer."""

    def __init__(self, ctx, endpoint, resend_after=5.0, resend_max=30.0, rng=None):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(endpoint)
        self.rng = rng or random.Random()
        self.resend_after = resend_after
        self.resend_max = resend_max
        self.jobs = collections.OrderedDict()  # id -> JobState
        self.pending = set()                    # sent, not final
        self.outbox = collections.OrderedDict()  # ids to send now
        self.seq = 0
        self.seq_ids = {}
        self.expect_replay = collections.Counter()
        self.problems = []
        self.result_times = []   # monotonic time of every RESULT received
        self.resent = 0          # ids re-sent after silence
        self.retried = 0         # ids re-sent after a retryable rejection
        self.rejected_codes = collections.Counter()
        self.unexpected = 0

    def add(self, job, attempt_idx):
        self.jobs[job["job_id"]] = JobState(job, attempt_idx)

    def queue(self, job_id):
        self.outbox[job_id] = True

    def flush(self, now, batch=1000):
        while self.outbox:
            ids = []
            while self.outbox and len(ids) < batch:
                ids.append(self.outbox.popitem(last=False)[0])
            ids = [i for i in ids if self.jobs[i].final is None]
            if not ids:
                continue
            self.seq += 1
            self.seq_ids[self.seq] = ids
            body = msgpack.packb({"seq": self.seq, "jobs": [self.jobs[i].job for i in ids]},
                                 use_bin_type=True)
            self.sock.send_multipart([scl.SIGNATURE, b"SUBMIT", body])
            for i in ids:
                st = self.jobs[i]
                if st.first_sent is None:
                    st.first_sent = now
                st.last_sent = now
                st.sends += 1
                st.next_resend = now + self._silence(st.sends)
                self.pending.add(i)

    def _silence(self, sends):
        t = min(self.resend_max, self.resend_after * (2 ** (sends - 1)))
        return t * self.rng.uniform(0.9, 1.1)

    def resend_due(self, now):
        for i in list(self.pending):
            st = self.jobs[i]
            if st.final is None and st.next_resend is not None and now >= st.next_resend:
                st.next_resend = None
                self.resent += 1
                self.queue(i)

    def _retry(self, job_id, now):
        st = self.jobs[job_id]
        st.next_resend = now + st.retry_backoff * self.rng.uniform(0.8, 1.2)
        st.retry_backoff = min(2.0, st.retry_backoff * 2)
        self.retried += 1

    def _final(self, job_id, kind, now):
        st = self.jobs[job_id]
        if st.final is None:
            st.final = kind
            st.t_final = now
            self.pending.discard(job_id)

    def handle(self, frames, now):
        if len(frames) != 3 or frames[0] != scl.SIGNATURE:
            self.problems.append("malformed message from the broker: %r" % (frames[:2],))
            return None
        cmd, raw = frames[1], frames[2]
        body = scl.unpack(raw)
        if cmd == b"ACCEPTED":
            for e in body.get("jobs", []):
                jid = e.get("job_id")
                st = self.jobs.get(jid)
                if st is None:
                    self.unexpected += 1
                    continue
                st.accepted += 1
                if e.get("state") == "done":
                    self.expect_replay[jid] += 1
        elif cmd == b"REJECTED":
            entries = body.get("jobs") or []
            if not entries:
                code = body.get("code")
                self.rejected_codes[code] += 1
                ids = self.seq_ids.get(body.get("seq"), [])
                for jid in ids:
                    st = self.jobs[jid]
                    if st.final is not None:
                        continue
                    if code in RETRYABLE:
                        self._retry(jid, now)
                    else:
                        st.rejections.append((code, body.get("message")))
                        self._final(jid, "rejected", now)
            for e in entries:
                jid, code = e.get("job_id"), e.get("code")
                self.rejected_codes[code] += 1
                st = self.jobs.get(jid)
                if st is None:
                    self.unexpected += 1
                    continue
                st.rejections.append((code, e.get("message")))
                if st.final is not None:
                    continue
                if code == "dead_letter":
                    self._final(jid, "dead", now)
                elif code in RETRYABLE:
                    self._retry(jid, now)
                else:
                    self._final(jid, "rejected", now)
        elif cmd == b"RESULT":
            jid = body.get("job_id")
            st = self.jobs.get(jid)
            self.result_times.append(now)
            if st is None:
                self.unexpected += 1
                return None
            h = hashlib.sha256(raw).hexdigest()
            if self.expect_replay[jid] > 0:
                self.expect_replay[jid] -= 1
                st.replays += 1
            else:
                st.emissions += 1
            if st.result_hash is None:
                st.result_hash = h
            elif st.result_hash != h:
                self.problems.append("job %s: two RESULTs with different bytes" % jid)
            self._final(jid, "result", now)
            return jid
        else:
            self.problems.append("unexpected command %r on the submit socket" % cmd)
        return None

    def close(self):
        self.sock.close(0)


# ---- the scenario ---------------------------------------------------------------

class Chaos:

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmpdir = tempfile.mkdtemp(prefix="scl-chaos-")
        self.prefix = "chaos:%d:" % args.seed
        self.ctx = zmq.Context()
        self.redis = AofRedis(self.tmpdir)
        self.submit_port = scl.free_port()
        self.work_port = scl.free_port()
        self.events_port = scl.free_port()
        self.metrics_port = scl.free_port()
        self.broker = None
        self.brokers = []
        self.workers = []       # every worker Proc ever started
        self.nworkers = 0
        self.stopped = None     # the SIGSTOPped worker
        self.draining = {}      # worker -> SIGTERM time
        self.failures = []
        self.notes = []
        self.faults = []        # dicts describing each injected fault
        self.metrics_before_restart = {}
        self.health = []        # (unix time, status, first line)
        self.health_stop = threading.Event()
        self.sub_seen = collections.Counter()
        self.sub_hash = {}
        self.event_times = []   # monotonic time of every event seen (submitter or PUB)
        self.worker_exits = []  # (name, rc) of workers that exited by themselves
        self.respawn_at = []    # monotonic times at which to start a replacement worker
        self.redis_starting = None  # the Redis fault whose server is loading its AOF
        self.report = {}

    # -- processes --

    def fail(self, msg):
        self.failures.append(msg)
        log("FAIL: " + msg)

    def broker_argv(self):
        return [scl.binary("scoreline-broker"), "--redis", self.redis.url,
                "--prefix", self.prefix, "--name", "main",
                "--submit", scl.tcp(self.submit_port), "--work", scl.tcp(self.work_port),
                "--events", scl.tcp(self.events_port),
                "--metrics", "127.0.0.1:%d" % self.metrics_port,
                "--heartbeat", "1000", "--liveness", "3", "--max-attempts", "3",
                "--ttr", str(self.args.ttr_ms), "--log-level", "info"]

    def start_broker(self):
        self.broker = scl.Proc("broker-%d" % len(self.brokers), self.broker_argv(), self.tmpdir)
        self.broker.t_start = time.time()
        self.brokers.append(self.broker)
        return self.broker

    def start_worker(self):
        self.nworkers += 1
        wid = "w%d" % self.nworkers
        argv = [scl.binary("scoreline-worker"), "--redis", self.redis.url,
                "--broker", scl.tcp(self.work_port), "--prefix", self.prefix, "--id", wid,
                "--credit", str(self.args.credit), "--threads", str(self.args.threads),
                "--fault-match", POISON_TAG, "--fault-delay-ms", str(POISON_DELAY_MS),
                "--log-level", "info"]
        w = scl.Proc("worker-%s" % wid, argv, self.tmpdir)
        w.worker_id = wid
        w.t_start = time.time()
        w.planned = None    # "kill", "drain" once we signal it
        self.workers.append(w)
        return w

    def live_workers(self):
        return [w for w in self.workers if w.planned is None and w.alive()]

    def ready_workers(self):
        """Live workers that have registered (logged worker.ready)."""
        out = []
        for w in self.live_workers():
            if not getattr(w, "ready", False):
                w.ready = "event=worker.ready" in w.log()
            if w.ready:
                out.append(w)
        return out

    def rubric_push(self):
        r = scl.run_cli(["--redis", self.redis.url, "--prefix", self.prefix,
                         "rubric", "push", scl.rubric_file("csm-smb")])
        if r.rc != 0:
            raise RuntimeError("scoreline rubric push failed: %r" % r)

    def scrape(self):
        status, text = http_get(self.metrics_port, "/metrics", timeout=1.0)
        return parse_metrics(text) if status == 200 else {}

    def health_loop(self):
        while not self.health_stop.wait(0.2):
            status, text = http_get(self.metrics_port, "/healthz", timeout=0.5)
            self.health.append((time.time(), status, (text or "").strip().splitlines()[0:1]))

    # -- faults --

    def fault_kill_worker(self):
        cands = [w for w in self.live_workers() if w is not self.stopped]
        if not cands:
            return
        w = self.rng.choice(cands)
        w.planned = "kill"
        t = time.time()
        w.p.send_signal(signal.SIGKILL)
        w.p.wait(5)
        self.faults.append({"kind": "worker_kill", "worker": w.worker_id, "t": t,
                            "mono": time.monotonic()})
        self.start_worker()

    def fault_stop_worker(self):
        cands = [w for w in self.ready_workers()]
        if not cands:
            self.schedule(0.5, "worker_stop", self.fault_stop_worker)
            return
        w = self.rng.choice(cands)
        self.stopped = w
        w.p.send_signal(signal.SIGSTOP)
        f = {"kind": "worker_stop", "worker": w.worker_id, "t": time.time(),
             "mono": time.monotonic(), "seconds": self.args.stop_seconds}
        self.faults.append(f)
        log("SIGSTOP %s for %gs" % (w.worker_id, self.args.stop_seconds))
        self.schedule(self.args.stop_seconds, "worker_cont", lambda: self.fault_cont(w, f))

    def fault_cont(self, w, f):
        if w.alive():
            w.p.send_signal(signal.SIGCONT)
        f["t_cont"] = time.time()
        f["mono_cont"] = time.monotonic()
        self.stopped = None
        log("SIGCONT %s" % w.worker_id)

    def fault_restart_broker(self):
        self.metrics_before_restart = self.scrape()
        t = time.time()
        self.broker.p.send_signal(signal.SIGKILL)
        self.broker.p.wait(5)
        old = self.broker
        self.start_broker()
        self.faults.append({"kind": "broker_restart", "t": t, "mono": time.monotonic(),
                            "old": old, "new": self.broker})
        log("broker SIGKILLed and started again on the same ports")

    def fault_restart_redis(self):
        t = time.time()
        self.redis.kill()
        f = {"kind": "redis_restart", "t": t, "mono": time.monotonic()}
        self.faults.append(f)
        log("redis SIGKILLed; back in %gs" % self.args.redis_down)

        def back():
            self.redis.start()
            f["t_start"] = time.time()
            self.redis_starting = f
        self.schedule(self.args.redis_down, "redis_start", back)

    def fault_drain_worker(self):
        cands = [w for w in self.ready_workers() if w is not self.stopped]
        if not cands:
            self.schedule(0.5, "worker_drain", self.fault_drain_worker)
            return
        w = self.rng.choice(cands)
        w.planned = "drain"
        t = time.time()
        w.p.send_signal(signal.SIGTERM)
        self.draining[w] = time.monotonic()
        self.faults.append({"kind": "worker_drain", "worker": w.worker_id, "t": t,
                            "mono": time.monotonic(), "w": w})
        log("SIGTERM %s (drain)" % w.worker_id)

    # -- scheduler --

    def schedule(self, delay, name, fn):
        self.timers.append((time.monotonic() + delay, name, fn))

    def run_timers(self):
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        if not due:
            return
        self.timers = [t for t in self.timers if t[0] > now]
        for _, name, fn in sorted(due, key=lambda t: t[0]):
            fn()

    def supervise(self):
        """Replace workers that exited by themselves; check drains."""
        now = time.monotonic()
        for w in self.workers:
            if w.planned is None and not w.alive() and not getattr(w, "reaped", False):
                w.reaped = True
                rc = w.p.returncode
                self.worker_exits.append((w.worker_id, rc))
                if rc == 3 and "worker.start_failed" in w.log() and "Redis" in w.log():
                    self.notes.append("%s exited 3 at start (Redis away); restarted"
                                      % w.worker_id)
                elif rc == 4:
                    self.notes.append("%s exited 4 (too many runaway gradings); restarted"
                                      % w.worker_id)
                else:
                    self.fail("%s exited by itself with status %r" % (w.worker_id, rc))
                self.respawn_at.append(now + 0.5)
        for w, t in list(self.draining.items()):
            if not w.alive():
                del self.draining[w]
                el = now - t
                f = next(f for f in self.faults if f.get("w") is w)
                f["exit_s"] = el
                f["rc"] = w.p.returncode
                if w.p.returncode != 0 or el > 10.0:
                    self.fail("worker %s drained with status %r after %.2fs (want 0 within 10 s)"
                              % (w.worker_id, w.p.returncode, el))
                self.start_worker()
            elif now - t > 12.0:
                del self.draining[w]
                self.fail("worker %s still running 12 s after SIGTERM" % w.worker_id)
                w.kill()
                self.start_worker()
        for t in list(self.respawn_at):
            if t <= now:
                self.respawn_at.remove(t)
                self.start_worker()

    # -- main --

    def run(self):
        a = self.args
        log("seed %d, %d jobs + %d poison over %gs, %d workers (credit %d), bin %s"
            % (a.seed, a.jobs, a.poison, a.duration, a.workers, a.credit, scl.BIN_DIR))
        log("tmp %s" % self.tmpdir)

        # Offline grades of every distinct attempt: the reference bytes.
        attempts = [scl.load_attempt(p) for p in scl.attempt_files()]
        rubric = scl.rubric_file("csm-smb")
        self.offline = []
        for path in scl.attempt_files():
            r = scl.run_cli(["grade", rubric, path, "--msgpack"])
            if r.rc != 0:
                raise RuntimeError("offline grade of %s failed: %r" % (path, r))
            d = scl.unpack(r.stdout)
            self.offline.append((r.stdout, d.get("digest")))
        log("graded %d sample attempts offline" % len(self.offline))

        self.redis.start()
        self.redis.wait_up(scl.START_TIMEOUT)
        self.rubric_push()
        self.start_broker()
        self.broker.wait_log("event=broker.ready")
        for _ in range(a.workers):
            self.start_worker()
        for w in self.workers:
            w.wait_log("event=worker.ready")
        threading.Thread(target=self.health_loop, daemon=True).start()

        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(scl.tcp(self.events_port))
        self.sub = sub
        self.sub_dups = []
        sm = Submitter(self.ctx, scl.tcp(self.submit_port), resend_after=a.resend_after,
                       rng=random.Random(a.seed + 1))
        self.sm = sm

        # Jobs: each a sample attempt picked at random, with its own id.
        order = []
        for i in range(a.jobs):
            k = self.rng.randrange(len(attempts))
            job = scl.job_from_attempt(attempts[k], "c%d-%06d" % (a.seed, i),
                                       candidate="cand-%06d" % i, tenant="chaos")
            sm.add(job, k)
            order.append(job["job_id"])
        poison = []
        for i in range(a.poison):
            job = scl.job_from_attempt(attempts[0], "%s-%d-%d" % (POISON_TAG, a.seed, i),
                                       tenant="chaos", ttr_ms=a.poison_ttr_ms)
            sm.add(job, 0)
            poison.append(job["job_id"])
        self.poison = poison
        self.regular = order

        # The fault plan, relative to the start of submission.
        D = a.duration
        self.timers = []
        self.schedule(min(1.0, D * 0.02), "poison", lambda: [sm.queue(p) for p in poison])
        self.schedule(D * 0.15, "worker_stop", self.fault_stop_worker)
        self.schedule(D * 0.40, "broker_restart", self.fault_restart_broker)
        self.schedule(D * 0.65, "redis_restart", self.fault_restart_redis)
        self.schedule(D * 0.80, "worker_drain", self.fault_drain_worker)
        t = 2.0
        while t < D - 2.0:
            self.schedule(t, "worker_kill", self.fault_kill_worker)
            t += self.rng.uniform(1.0, 2.0)

        start = time.monotonic()
        self.t_start = start
        deadline = start + D + a.tail
        sent = 0
        poller = zmq.Poller()
        poller.register(sm.sock, zmq.POLLIN)
        poller.register(sub, zmq.POLLIN)
        next_supervise = next_resend = 0.0
        broker_ready_seen = set()
        log("submitting")
        while True:
            now = time.monotonic()
            self.run_timers()
            # Steady open-loop submission: job i is due at start + i * D / jobs.
            due = min(a.jobs, int((now - start) / D * a.jobs) + 1)
            while sent < due:
                sm.queue(order[sent])
                sent += 1
            if now >= next_resend:
                sm.resend_due(now)
                next_resend = now + 0.25
            sm.flush(now)
            for _ in range(2000):
                events = dict(poller.poll(10))
                if not events:
                    break
                now = time.monotonic()
                if sm.sock in events:
                    while True:
                        try:
                            frames = sm.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if sm.handle(frames, now) is not None:
                            self.event_times.append(now)
                if sub in events:
                    while True:
                        try:
                            frames = sub.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if len(frames) == 3 and frames[1] == b"RESULT":
                            jid = scl.unpack(frames[2]).get("job_id")
                            self.sub_seen[jid] += 1
                            if self.sub_seen[jid] == 2:
                                self.sub_dups.append(jid)
                            self.sub_hash.setdefault(jid, hashlib.sha256(frames[2]).hexdigest())
                            self.event_times.append(now)
                if time.monotonic() - now > 0.05:
                    break
            now = time.monotonic()
            if now >= next_supervise:
                next_supervise = now + 0.1
                self.supervise()
                f = self.redis_starting
                if f is not None and self.redis.ping():
                    f["t_ready"] = time.time()
                    self.redis_starting = None
                for b in self.brokers:
                    if b not in broker_ready_seen:
                        line = next((x for x in b.log().splitlines()
                                     if "event=broker.ready" in x), None)
                        if line:
                            broker_ready_seen.add(b)
                            b.t_ready = log_ts(line) or time.time()
                            b.mono_ready = time.monotonic() - (time.time() - b.t_ready)
                    if b is self.broker and not b.alive():
                        self.fail("broker exited by itself with status %r" % b.p.returncode)
                        raise RuntimeError("broker died")
            if sent == a.jobs and not sm.pending and not sm.outbox and not self.timers_pending():
                break
            if now > deadline:
                self.fail("deadline: %d job ids still without a final answer (e.g. %s)"
                          % (len(sm.pending), sorted(sm.pending)[:5]))
                break
        self.elapsed = time.monotonic() - start
        log("all answers in after %.1fs" % self.elapsed)
        self.finish()

    def timers_pending(self):
        # Faults still to come (worker kills beyond the end do not hold the run).
        return any(name != "worker_kill" for _, name, _ in self.timers) or \
            self.stopped is not None or bool(self.draining)

    # -- checks --

    def finish(self):
        a, sm = self.args, self.sm
        self.timers = []
        if self.stopped is not None and self.stopped.alive():
            self.stopped.p.send_signal(signal.SIGCONT)
            self.stopped = None
        # Let late duplicates settle, then drain the sockets once more.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            if sm.sock.poll(50):
                sm.handle(sm.sock.recv_multipart(), time.monotonic())
            while self.sub.poll(0):
                frames = self.sub.recv_multipart()
                jid = scl.unpack(frames[2]).get("job_id")
                self.sub_seen[jid] += 1
                if self.sub_seen[jid] == 2:
                    self.sub_dups.append(jid)

        # Submitter's view.
        regular, poison = self.regular, self.poison
        lost = [j for j in regular if sm.jobs[j].final != "result"]
        for j in lost[:10]:
            st = sm.jobs[j]
            self.fail("job %s: final=%s rejections=%s sends=%d" % (j, st.final, st.rejections[-2:],
                                                                    st.sends))
        if lost:
            self.fail("%d of %d jobs without a RESULT at the submitter" % (len(lost), len(regular)))
        many = [j for j in regular if sm.jobs[j].emissions > 1]
        if many:
            self.fail("%d jobs were pushed to the submitter more than once (e.g. %s)"
                      % (len(many), many[:5]))
        for j in poison:
            st = sm.jobs[j]
            if st.final != "dead":
                self.fail("poison job %s: final=%s (want REJECTED dead_letter) rejections=%s"
                          % (j, st.final, st.rejections))
            if st.emissions or st.replays:
                self.fail("poison job %s got a RESULT" % j)
        for p in sm.problems[:10]:
            self.fail(p)
        if sm.unexpected:
            self.fail("%d answers named job ids never submitted" % sm.unexpected)
        if self.sub_dups:
            self.fail("%d job ids published twice on PUB (e.g. %s)"
                      % (len(self.sub_dups), self.sub_dups[:5]))

        # Redis: events, dead letters, done keys, journal.
        r = scl.RespClient(self.redis.port, timeout=10)
        try:
            self.check_redis(r)
            self.check_resubmit(r)
        finally:
            r.close()
        self.final_metrics = self.scrape()
        self.shutdown()
        self.print_report()

    def check_redis(self, r):
        sm = self.sm
        key = self.prefix + "events"
        xlen = r.call("XLEN", key)
        seen = collections.Counter()
        attempts_hist = collections.Counter()
        mismatched = []
        start = "-"
        n = 0
        while True:
            page = r.call("XRANGE", key, start, "+", "COUNT", "500")
            if not page:
                break
            for sid, fields in page:
                f = dict(zip(fields[0::2], fields[1::2]))
                jid = f[b"job_id"].decode()
                ev = f[b"event"]
                n += 1
                seen[jid] += 1
                st = sm.jobs.get(jid)
                if st is None:
                    mismatched.append("%s: not a job of this run" % jid)
                    continue
                body = scl.unpack(ev)
                if body.get("job_id") != jid or body.get("status") != "ok":
                    mismatched.append("%s: %r" % (jid, scl.brief(body)))
                    continue
                attempts_hist[body.get("attempt")] += 1
                ref, ref_digest = self.offline[st.attempt_idx]
                if raw_field(ev, "result") != ref:
                    mismatched.append("%s: result bytes differ from the offline grade" % jid)
                if body.get("digest") != ref_digest or body["result"].get("digest") != ref_digest:
                    mismatched.append("%s: digest %s, offline %s" % (jid, body.get("digest"),
                                                                    ref_digest))
                h = hashlib.sha256(ev).hexdigest()
                if st.result_hash is not None and st.result_hash != h:
                    mismatched.append("%s: the stream and the submitter hold different bytes" % jid)
                if jid in self.sub_hash and self.sub_hash[jid] != h:
                    mismatched.append("%s: the stream and PUB hold different bytes" % jid)
            last = page[-1][0].decode()
            ms, s = last.split("-")
            start = "%s-%d" % (ms, int(s) + 1)
        self.attempts_hist = attempts_hist
        regular = set(self.regular)
        dups = [j for j, c in seen.items() if c > 1]
        missing = regular - set(seen)
        extra = set(seen) - regular
        self.stream_len = xlen
        self.stream_distinct = len(seen)
        if xlen != len(regular) or n != len(regular):
            self.fail("events stream holds %d entries (read %d), want exactly %d"
                      % (xlen, n, len(regular)))
        if dups:
            self.fail("%d job ids twice in the events stream (e.g. %s)" % (len(dups), dups[:5]))
        if missing:
            why = collections.Counter(str(sm.jobs[j].final) for j in missing)
            self.fail("%d jobs have no score event in the stream (submitter's final answer: %s; "
                      "e.g. %s)" % (len(missing), dict(why), sorted(missing)[:5]))
        if extra:
            self.fail("%d unexpected ids in the events stream (e.g. %s)"
                      % (len(extra), sorted(extra)[:5]))
        for m in mismatched[:10]:
            self.fail(m)
        if mismatched:
            self.fail("%d events do not match the offline grade / the submitter's copy"
                      % len(mismatched))

        dead = r.call("XRANGE", self.prefix + "dead", "-", "+") or []
        dead_ids = collections.Counter()
        self.dead_ids = dead_ids
        self.dead_entries = []
        for sid, fields in dead:
            f = dict(zip(fields[0::2], fields[1::2]))
            jid = f.get(b"job_id", b"").decode()
            dead_ids[jid] += 1
            entry = {k.decode(): (v.decode("utf-8", "replace") if k != b"job" else len(v))
                     for k, v in f.items()}
            self.dead_entries.append(entry)
            if jid in self.poison:
                if entry.get("attempts") != "3":
                    self.fail("dead letter %s: attempts=%s, want 3" % (jid, entry.get("attempts")))
                if not re.match(r"(delivered 3 times without a result|3 deliveries failed); "
                                r"last: (time-to-run of %d ms passed|worker \S+ (stopped "
                                r"answering heartbeats|closed its connection))"
                                % self.args.poison_ttr_ms, entry.get("reason", "")):
                    self.fail("dead letter %s: reason %r does not name the last error"
                              % (jid, entry.get("reason")))
        both = sorted(set(dead_ids) & set(seen))
        if both:
            self.fail("%d jobs are both dead-lettered and scored (a score event too; e.g. %s)"
                      % (len(both), both[:5]))
        self.dead_and_scored = len(both)
        self.dead_regular = len(set(dead_ids) - set(self.poison))
        if set(dead_ids) != set(self.poison) or any(c != 1 for c in dead_ids.values()):
            self.fail("dead-letter stream holds %s, want each poison job once: %s"
                      % (dict(dead_ids), self.poison))
        for p in self.poison:
            done = r.call("GET", self.prefix + "done:" + p)
            if done is not None and not done.startswith(b"DEAD:"):
                self.fail("poison job %s has a score under its done key" % p)
            if p in seen:
                self.fail("poison job %s has a score event" % p)
        jkey = self.prefix + "journal:main"
        end = time.monotonic() + 15  # the broker sweeps orphan entries every few seconds
        while r.call("XLEN", jkey) != 0 and time.monotonic() < end:
            time.sleep(0.2)
        jl = r.call("XLEN", jkey)
        if jl != 0:
            self.fail("journal still holds %d entries after every job was answered" % jl)

    def check_resubmit(self, r):
        """Resubmitting finished ids: ACCEPTED duplicate done, the stored
        RESULT with the very same bytes, no new event."""
        sm = self.sm
        done = [j for j in self.regular if sm.jobs[j].final == "result"
                and j not in self.dead_ids]
        sample = self.rng.sample(done, min(50, len(done)))
        before = r.call("XLEN", self.prefix + "events")
        c = scl.Client(scl.tcp(self.submit_port), self.ctx)
        try:
            got = c.submit([sm.jobs[j].job for j in sample], timeout=30)
        except AssertionError as e:
            self.fail("resubmission of finished jobs: %s" % e)
            c.close()
            return
        c.close()
        bad = 0
        for j in sample:
            acc = got.accepted.get(j, [])
            rs = got.results.get(j, [])
            if [(e["state"], e["duplicate"]) for e in acc] != [("done", True)] or len(rs) != 1 or \
                    hashlib.sha256(rs[0].raw).hexdigest() != sm.jobs[j].result_hash:
                bad += 1
                if bad <= 3:
                    self.fail("resubmitted %s: accepted %r, %d RESULTs" % (j, acc, len(rs)))
        time.sleep(0.5)
        after = r.call("XLEN", self.prefix + "events")
        if after != before:
            self.fail("resubmitting %d finished jobs added %d events" % (len(sample), after - before))
        self.resubmit_checked = len(sample) - bad

    def shutdown(self):
        """SIGTERM every worker, then the broker: each must exit 0 within 10 s."""
        self.health_stop.set()
        self.drain_times = []
        live = [w for w in self.workers if w.alive()]
        t0 = time.monotonic()
        for w in live:
            w.p.send_signal(signal.SIGTERM)
        for w in live:
            try:
                rc = w.p.wait(max(0.1, 10.0 - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                rc = None
            el = time.monotonic() - t0
            self.drain_times.append((w.worker_id, rc, el))
            if rc != 0:
                self.fail("worker %s: exit %r within 10 s of SIGTERM at shutdown" % (w.worker_id, rc))
        if self.broker.alive():
            t0 = time.monotonic()
            self.broker.p.send_signal(signal.SIGTERM)
            try:
                rc = self.broker.p.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            self.broker_drain = (rc, time.monotonic() - t0)
            if rc != 0:
                self.fail("broker: exit %r within 10 s of SIGTERM" % (rc,))

    # -- report --

    def broker_lines(self, event):
        out = []
        for b in self.brokers:
            for line in b.log().splitlines():
                if "event=%s " % event in line or line.endswith("event=%s" % event):
                    out.append(line)
        return out

    def first_event_after(self, mono):
        for t in self.event_times:
            if t > mono:
                return t - mono
        return None

    def print_report(self):
        a, sm = self.args, self.sm
        # A worker is declared dead when it misses heartbeats (worker.lost) or
        # when a JOB cannot be routed to its closed connection (worker.gone).
        lost_lines = sorted(self.broker_lines("worker.lost") + self.broker_lines("worker.gone"),
                            key=lambda line: log_ts(line) or 0)
        ready_lines = self.broker_lines("worker.ready")

        def lost_after(wid, t):
            for line in lost_lines:
                if re.search(r"worker=%s " % re.escape(wid), line):
                    ts = log_ts(line)
                    if ts and ts >= t:
                        m = re.search(r"inflight=(\d+)", line)
                        return ts - t, int(m.group(1)) if m else None
            return None, None

        def ready_after(wid, t):
            for line in ready_lines:
                if re.search(r"worker=%s " % re.escape(wid), line):
                    ts = log_ts(line)
                    if ts and ts >= t:
                        return ts - t
            return None

        kills = [f for f in self.faults if f["kind"] == "worker_kill"]
        detect = []
        requeued = 0
        for f in kills:
            d, n = lost_after(f["worker"], f["t"])
            f["detect_s"] = d
            if d is not None:
                detect.append(d)
                requeued += n or 0
        rep = collections.OrderedDict()
        rep["seed"] = a.seed
        rep["jobs"] = len(self.regular)
        rep["poison"] = len(self.poison)
        rep["workers"] = a.workers
        rep["duration_s"] = a.duration
        rep["elapsed_s"] = round(self.elapsed, 2)
        rep["stream_events"] = self.stream_len
        rep["stream_distinct"] = self.stream_distinct
        rep["lost"] = len([j for j in self.regular if sm.jobs[j].final is None])
        rep["dead_lettered_regular"] = getattr(self, "dead_regular", 0)
        rep["dead_and_scored"] = getattr(self, "dead_and_scored", 0)
        rep["rejected_regular"] = len([j for j in self.regular
                                       if sm.jobs[j].final == "rejected"])
        rep["duplicate_events"] = self.stream_len - self.stream_distinct
        m0, m1 = self.metrics_before_restart, self.final_metrics

        def msum(name):
            return int(m0.get(name, 0) + m1.get(name, 0))
        rep["redeliveries"] = msum("scoreline_redeliveries_total")
        rep["dead_letters"] = msum("scoreline_dead_letters_total")
        rep["dead_stream"] = len(self.dead_entries)
        rep["workers_lost"] = msum("scoreline_workers_lost_total")
        rep["ttr_expired"] = msum("scoreline_ttr_expired_total")
        rep["duplicate_results_dropped"] = msum("scoreline_results_duplicate_total")
        rep["events_by_attempt"] = dict(sorted(self.attempts_hist.items()))
        rep["submitter_resends"] = sm.resent
        rep["submitter_retries"] = sm.retried
        rep["submitter_replays"] = sum(sm.jobs[j].replays for j in self.regular)
        rep["rejected_codes"] = dict(sm.rejected_codes)
        lat = [sm.jobs[j].t_final - sm.jobs[j].first_sent for j in self.regular
               if sm.jobs[j].final == "result"]
        rep["latency_p50_ms"] = round(pct(lat, 50) * 1000, 1) if lat else None
        rep["latency_p99_ms"] = round(pct(lat, 99) * 1000, 1) if lat else None
        rep["latency_max_ms"] = round(max(lat) * 1000, 1) if lat else None
        rep["worker_kills"] = len(kills)
        rep["kill_detect_p50_s"] = round(pct(detect, 50), 2) if detect else None
        rep["kill_detect_max_s"] = round(max(detect), 2) if detect else None
        rep["kill_detected"] = len(detect)
        rep["kill_requeued_jobs"] = requeued
        faults = []
        for f in self.faults:
            if f["kind"] == "worker_stop":
                d, n = lost_after(f["worker"], f["t"])
                rj = ready_after(f["worker"], f.get("t_cont", f["t"]))
                faults.append({"fault": "SIGSTOP %s for %gs" % (f["worker"], f["seconds"]),
                               "requeued_after_s": d, "requeued_jobs": n,
                               "rejoined_after_cont_s": rj})
                if d is None or d > a.max_detect:
                    self.fail("stopped worker %s: jobs requeued after %s (want <= %gs)"
                              % (f["worker"], fmt_s(d), a.max_detect))
            elif f["kind"] == "broker_restart":
                new = f["new"]
                ready = getattr(new, "t_ready", None)
                down = ready - f["t"] if ready else None
                prog = self.first_event_after(new.mono_ready) if ready else None
                rec = re.search(r"event=journal\.recovered jobs=(\d+)", new.log())
                faults.append({"fault": "broker SIGKILL + restart", "back_up_s": down,
                               "first_event_after_kill_s":
                                   (prog + (new.mono_ready - f["mono"])) if prog is not None
                                   else None,
                               "recovered_from_journal": int(rec.group(1)) if rec else 0})
                if prog is None or prog + (new.mono_ready - f["mono"]) > a.max_recover:
                    self.fail("broker restart: no event within %gs" % a.max_recover)
            elif f["kind"] == "redis_restart":
                t_back = f.get("t_ready")
                deg = [h for h in self.health if h[0] >= f["t"] and h[1] == 503
                       and h[2] and h[2][0].startswith("degraded")]
                ok_again = [h for h in self.health if t_back and h[0] >= t_back and h[1] == 200]
                prog = self.first_event_after(f["mono"] + (t_back - f["t"])) if t_back else None
                faults.append({"fault": "Redis SIGKILL, down %gs, restart (AOF)" % a.redis_down,
                               "aof_load_s": (t_back - f["t_start"]) if t_back else None,
                               "healthz_degraded_seen": bool(deg),
                               "healthz_ok_after_redis_back_s":
                                   (ok_again[0][0] - t_back) if ok_again else None,
                               "first_event_after_redis_back_s": prog})
                if not deg:
                    self.fail("/healthz never answered 503 degraded while Redis was away")
                if prog is None or prog > a.max_recover:
                    self.fail("Redis restart: no event within %gs of Redis coming back"
                              % a.max_recover)
            elif f["kind"] == "worker_drain":
                faults.append({"fault": "SIGTERM %s (drain)" % f["worker"],
                               "exit_status": f.get("rc"), "exit_after_s": f.get("exit_s")})
        if detect and max(detect) > a.max_detect:
            slow = [(f["worker"], round(f["detect_s"], 2)) for f in kills
                    if f.get("detect_s") and f["detect_s"] > a.max_detect]
            self.fail("killed workers' jobs requeued later than %gs: %s" % (a.max_detect, slow))
        rep["faults"] = faults
        rep["worker_self_exits"] = self.worker_exits
        rep["shutdown_worker_drain_max_s"] = round(max(t for _, _, t in self.drain_times), 2) \
            if self.drain_times else None
        rep["shutdown_broker_drain_s"] = round(self.broker_drain[1], 2) \
            if getattr(self, "broker_drain", None) else None
        rep["resubmitted_done_ok"] = getattr(self, "resubmit_checked", 0)
        rep["notes"] = self.notes
        rep["failures"] = self.failures
        self.report = rep

        print()
        print("== scoreline chaos report (seed %d) ==" % a.seed)
        print("jobs                 %d + %d poison, %d workers, submitted over %gs, all answered "
              "after %.1fs" % (rep["jobs"], rep["poison"], a.workers, a.duration, self.elapsed))
        print("score events         %d in the stream, %d distinct; duplicates %d; jobs without "
              "an answer %d; regular jobs dead-lettered %d (of which also scored %d), "
              "rejected %d"
              % (rep["stream_events"], rep["stream_distinct"], rep["duplicate_events"],
                 rep["lost"], rep["dead_lettered_regular"],
                 rep["dead_and_scored"], rep["rejected_regular"]))
        print("byte-identical       every event equals the offline grade of its attempt: %s"
              % ("yes" if not any("offline" in f for f in self.failures) else "NO"))
        print("redeliveries         %d (events won by attempt: %s)"
              % (rep["redeliveries"], rep["events_by_attempt"]))
        print("dead letters         %d (stream %d): %s" % (rep["dead_letters"], rep["dead_stream"],
              ", ".join("%s attempts=%s" % (e.get("job_id"), e.get("attempts"))
                        for e in self.dead_entries)))
        if self.dead_entries:
            print("  reason             %s" % self.dead_entries[0].get("reason"))
        print("workers lost         %d; ttr expired %d; late duplicate results dropped %d"
              % (rep["workers_lost"], rep["ttr_expired"], rep["duplicate_results_dropped"]))
        print("worker SIGKILLs      %d; jobs requeued after p50 %s, max %s (%d detected, "
              "%d jobs requeued)" % (len(kills), fmt_s(rep["kill_detect_p50_s"]),
                                     fmt_s(rep["kill_detect_max_s"]), len(detect), requeued))
        for f in faults:
            print("%-20s %s" % (f["fault"].split(" ")[0], ", ".join(
                "%s=%s" % (k, ("%.2fs" % v) if isinstance(v, float) else v)
                for k, v in f.items() if k != "fault")) + "   [%s]" % f["fault"])
        print("submitter            %d resends after silence, %d retries after a rejection, "
              "%d stored RESULTs replayed; rejections %s"
              % (sm.resent, sm.retried, rep["submitter_replays"], rep["rejected_codes"]))
        print("latency              submit-to-event p50 %s ms, p99 %s ms, max %s ms"
              % (rep["latency_p50_ms"], rep["latency_p99_ms"], rep["latency_max_ms"]))
        print("shutdown             workers drained in <= %s s, broker in %s s; %d finished ids "
              "resubmitted: answered from the done-set, no new event"
              % (rep["shutdown_worker_drain_max_s"], rep["shutdown_broker_drain_s"],
                 rep["resubmitted_done_ok"]))
        for n in self.notes:
            print("note                 %s" % n)
        if self.failures:
            print("RESULT               FAIL (%d)" % len(self.failures))
            for f in self.failures:
                print("  - %s" % f)
        else:
            print("RESULT               PASS")
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(rep, fh, indent=2, default=str)

    def show_logs(self):
        procs = list(self.brokers) + list(self.redis.procs)
        crashed = [w for w in self.workers if w.planned is None and w.p.returncode not in (None, 0)]
        procs += crashed + [w for w in self.workers[-3:] if w not in crashed]
        for p in procs:
            sys.stdout.write("\n==== %s (%s) ====\n%s\n" % (p.name, p.log_path, p.tail(60)))

    def cleanup(self):
        self.health_stop.set()
        for w in self.workers:
            try:
                if w.alive():
                    w.p.send_signal(signal.SIGCONT)
            except Exception:
                pass
            w.kill()
        for b in self.brokers:
            b.kill()
        self.redis.stop()
        try:
            self.ctx.destroy(0)
        except Exception:
            pass


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="scoreline chaos test: real Redis, broker and workers under faults.")
    p.add_argument("--long", action="store_true",
                   help="the long form: 10000 jobs over 150 s, SIGSTOP 10 s, Redis down 3 s")
    p.add_argument("--jobs", type=int, help="regular jobs (short 2000, long 10000)")
    p.add_argument("--workers", type=int, default=3, help="workers kept running (default 3)")
    p.add_argument("--duration", type=float,
                   help="seconds over which jobs are submitted and faults happen "
                        "(short 60, long 150)")
    p.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    p.add_argument("--poison", type=int, help="poison jobs (short 3, long 5)")
    p.add_argument("--stop-seconds", type=float, help="SIGSTOP length (short 5, long 10)")
    p.add_argument("--redis-down", type=float, help="seconds Redis stays away (short 2, long 3)")
    p.add_argument("--credit", type=int, default=16, help="worker credit (default 16)")
    p.add_argument("--threads", type=int, default=1, help="grading threads per worker")
    p.add_argument("--ttr-ms", type=int, default=30000, help="broker default time-to-run")
    p.add_argument("--poison-ttr-ms", type=int, default=1000, help="poison jobs' ttr_ms")
    p.add_argument("--resend-after", type=float, default=5.0,
                   help="submitter: re-send an unanswered id after this many seconds")
    p.add_argument("--tail", type=float, default=120.0,
                   help="seconds after the submission window before giving up")
    p.add_argument("--max-detect", type=float, default=6.0,
                   help="fail when a dead worker's jobs are requeued later than this")
    p.add_argument("--max-recover", type=float, default=15.0,
                   help="fail when no event comes this long after a broker/Redis restart")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    a = p.parse_args(argv)
    short = {"jobs": 2000, "duration": 60.0, "poison": 3, "stop_seconds": 5.0, "redis_down": 2.0}
    long_ = {"jobs": 10000, "duration": 150.0, "poison": 5, "stop_seconds": 10.0,
             "redis_down": 3.0}
    for k, v in (long_ if a.long else short).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    if a.jobs < 1 or a.workers < 2 or a.duration < 20:
        p.error("need --jobs >= 1, --workers >= 2, --duration >= 20")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ch = Chaos(args)
    ok = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        ch.run()
        ok = not ch.failures
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:
        import traceback
        traceback.print_exc()
        ch.failures.append("harness error: %s" % e)
        log("FAIL: harness error: %s" % e)
    finally:
        if not ok:
            ch.show_logs()
        ch.cleanup()
        if args.keep or not ok:
            print("logs kept in %s" % ch.tmpdir)
        else:
            shutil.rmtree(ch.tmpdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""scl.py - harness for the scoreline integration tests.

Everything here runs real processes: a private redis-server on a free
loopback port with its own temp dir, scoreline-broker and scoreline-worker as
subprocesses (logs to files, shown when a test fails), and the scoreline CLI.

It also holds a minimal SCL1 client (pyzmq DEALER + msgpack) written from
proto/PROTOCOL.md alone: besides driving the tests, it shows that a third
party can talk to the broker from the spec.

Environment (set by ctest, see tests/CMakeLists.txt):
  SCORELINE_BIN_DIR     build directory holding the binaries
  SCORELINE_SOURCE_DIR  the repository (rubrics, proto/PROTOCOL.md)
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import msgpack
import zmq

SOURCE_DIR = os.environ.get(
    "SCORELINE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("SCORELINE_BIN_DIR", os.path.join(SOURCE_DIR, "build"))

SIGNATURE = b"SCL1"
RUBRIC_DIR = os.path.join(SOURCE_DIR, "rubrics", "csm-smb")
ATTEMPT_DIR = os.path.join(RUBRIC_DIR, "attempts")

# Ports the tests must never use: a system redis and the documented defaults.
RESERVED_PORTS = {6379, 5555, 5556, 5557}

# Sanitizer settings for every process we start (a no-op on a plain build).
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=0:detect_leaks=1:"
                    "print_stacktrace=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "LSAN_OPTIONS": "print_suppressions=0",
}

# Startup under ASan is slower; be generous everywhere we wait for a daemon.
START_TIMEOUT = float(os.environ.get("SCORELINE_TEST_START_TIMEOUT", "20"))
STOP_TIMEOUT = 10.0


def binary(name):
    """Path of a built binary; fails the test loudly when it is missing."""
    for cand in (os.path.join(BIN_DIR, name),
                 os.path.join(BIN_DIR, "bin", name),
                 os.path.join(BIN_DIR, "broker", name),
                 os.path.join(BIN_DIR, "worker", name),
                 os.path.join(BIN_DIR, "cli", name)):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(
        "binary %s not found under %s (set SCORELINE_BIN_DIR to the build dir)" % (name, BIN_DIR))


def process_env(extra=None):
    env = dict(os.environ)
    for k, v in SANITIZER_ENV.items():
        env.setdefault(k, v)
    # Never let a developer's environment point a test at a shared service.
    for k in ("SCORELINE_REDIS_URL", "SCORELINE_SUBMIT", "SCORELINE_WORK", "SCORELINE_EVENTS",
              "SCORELINE_PREFIX", "SCORELINE_BROKER", "SCORELINE_METRICS"):
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


# ---- ports ----------------------------------------------------------------

_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (never a reserved
    one, never the same one twice in this process)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port in RESERVED_PORTS or port in _handed_out:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


def tcp(port):
    return "tcp://127.0.0.1:%d" % port


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a true value; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- a tiny RESP client (no redis-py in Debian's python3 by default) -------

class RedisError(Exception):
    pass


class RespClient:
    """Enough of the Redis protocol to inspect what the services wrote:
    bulk strings come back as bytes, so msgpack values survive intact."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("unexpected reply type %r" % line)

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()


# ---- processes --------------------------------------------------------------

def _die_with_parent():
    """In the child before exec: SIGKILL me when the test process dies, so a
    test killed by ctest's timeout leaves no daemon behind (Linux only)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Proc:
    """A daemon started by a test: stdout+stderr to a log file."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, "%s.log" % name)
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=process_env(env),
                                  preexec_fn=_die_with_parent)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, needle, timeout=START_TIMEOUT, count=1):
        """Wait until needle appears count times in the log; fail early if
        the process dies first."""
        def check():
            if self.log().count(needle) >= count:
                return True
            if not self.alive():
                raise AssertionError("%s exited with %s before logging %r; log:\n%s"
                                     % (self.name, self.p.returncode, needle, self.tail()))
            return False
        wait_for(check, timeout, "%s to log %r" % (self.name, needle))

    def tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then wait; returns the exit code (None if it had to be
        killed, which callers treat as a failure)."""
        if self.p.poll() is not None:
            return self.p.returncode
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.close()

    def wait(self, timeout):
        return self.p.wait(timeout)

    def close(self):
        try:
            self.logf.close()
        except OSError:
            pass


class RedisServer:
    """A private redis-server: own temp dir, loopback only, no persistence."""

    def __init__(self, tmpdir, port=None):
        self.tmpdir = tmpdir
        self.port = port or free_port()
        self.proc = None
        self.restarts = 0

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, fixed_port=False):
        """Start (or restart, on the same port) the server. A first start on
        a port another process grabbed meanwhile retries on a new one."""
        fixed_port = fixed_port or self.restarts > 0
        for tries in range(3):
            d = os.path.join(self.tmpdir, "redis-%d" % self.restarts)
            os.makedirs(d, exist_ok=True)
            argv = [shutil.which("redis-server") or "/usr/bin/redis-server",
                    "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", d,
                    "--daemonize", "no", "--protected-mode", "yes"]
            self.proc = Proc("redis-%d" % self.restarts, argv, self.tmpdir)
            self.restarts += 1
            try:
                wait_for(self._pong, START_TIMEOUT, "redis-server to answer PING on %d" % self.port)
                return self
            except AssertionError:
                log = self.proc.log()
                self.proc.kill()
                if fixed_port or tries == 2 or "in use" not in log:
                    raise
                self.port = free_port()
        return self

    def _pong(self):
        if not self.proc.alive():
            raise AssertionError("redis-server exited: %s" % self.proc.tail())
        try:
            c = RespClient(self.port, timeout=1)
            try:
                return c.call("PING") == "PONG"
            finally:
                c.close()
        except (OSError, RedisError):
            return False

    def client(self):
        return RespClient(self.port)

    def kill(self):
        if self.proc:
            self.proc.kill()

    def stop(self):
        if self.proc:
            if self.proc.alive():
                try:
                    c = RespClient(self.port, timeout=1)
                    c.sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
                    c.close()
                    self.proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self.proc.kill()


# ---- the SCL1 client --------------------------------------------------------

def journal_jobs(redis, key):
    """Job ids recorded in a journal stream (an entry holds the jobs of one
    accepted batch in field j: msgpack arrays [job_id, hash, job, attempts]
    one after the other)."""
    out = []
    for _sid, fields in redis.call("XRANGE", key, "-", "+") or []:
        f = dict(zip(fields[::2], fields[1::2]))
        if b"j" in f:
            u = msgpack.Unpacker(raw=False)
            u.feed(f[b"j"])
            out += [rec[0] for rec in u]
        elif b"job_id" in f:
            out.append(f[b"job_id"].decode())
    return out


def brief(body):
    """An event without its (long) result, for assertion messages."""
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "result"}
    return body


def unpack(body):
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


class Message:
    """One decoded broker message: command, body map and the raw body."""

    def __init__(self, command, raw):
        self.command = command
        self.raw = raw
        self.body = unpack(raw)

    def __repr__(self):
        return "Message(%s, %r)" % (self.command, brief(self.body))


class Client:
    """A submitter written from proto/PROTOCOL.md: a DEALER connected to the
    broker's submit endpoint. Messages are [SCL1][COMMAND][msgpack map]."""

    def __init__(self, endpoint, ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.connect(endpoint)
        self.seq = 0

    def close(self):
        self.sock.close(0)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def send(self, command, body):
        self.sock.send_multipart([SIGNATURE, command.encode(), msgpack.packb(body, use_bin_type=True)])

    def submit_async(self, jobs, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.send("SUBMIT", {"seq": seq, "jobs": jobs})
        return seq

    def recv(self, timeout):
        """One message or None after timeout seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        if len(frames) != 3 or frames[0] != SIGNATURE:
            raise AssertionError("malformed message from broker: %r" % (frames,))
        return Message(frames[1].decode(), frames[2])

    def collect(self, job_ids=(), seqs=(), timeout=30.0, results=True, into=None, drain=True):
        """Read messages until every job id has a final answer (a RESULT, or
        a REJECTED naming it) and every seq got its ACCEPTED/REJECTED.
        Returns a Collected with everything that arrived, in order; with
        into, messages are added to that Collected (and what it already
        holds counts), so several calls can share one view."""
        out = into if into is not None else Collected()
        want_jobs = set(job_ids)
        want_seqs = set(seqs)
        deadline = time.monotonic() + timeout
        while True:
            pending_jobs = want_jobs - out.final_ids() if results else set()
            pending_seqs = want_seqs - out.answered_seqs()
            if not pending_jobs and not pending_seqs:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "timed out: %d jobs without a result (e.g. %s), seqs unanswered %s"
                    % (len(pending_jobs), sorted(pending_jobs)[:3], sorted(pending_seqs)[:5]))
            m = self.recv(min(left, 0.5))
            if m is not None:
                out.add(m)
        # Pick up anything already on the wire (a stray duplicate would show).
        while drain:
            m = self.recv(0.2)
            if m is None:
                break
            out.add(m)
        return out

    def submit(self, jobs, seq=None, timeout=30.0, wait_results=True):
        """Submit jobs in one SUBMIT and collect the answers."""
        seq = self.submit_async(jobs, seq)
        return self.collect([j["job_id"] for j in jobs if isinstance(j, dict) and "job_id" in j],
                            [seq], timeout, results=wait_results)


class Collected:
    def __init__(self):
        self.messages = []
        self.accepted = {}   # job_id -> list of accepted job entries
        self.rejected = {}   # job_id -> list of rejected job entries
        self.results = {}    # job_id -> list of RESULT Messages
        self.rejects = []    # REJECTED bodies
        self.accepts = []    # ACCEPTED bodies

    def add(self, m):
        self.messages.append(m)
        b = m.body
        if m.command == "ACCEPTED":
            self.accepts.append(b)
            for j in b.get("jobs", []):
                self.accepted.setdefault(j.get("job_id"), []).append(j)
        elif m.command == "REJECTED":
            self.rejects.append(b)
            for j in b.get("jobs", []) or []:
                self.rejected.setdefault(j.get("job_id"), []).append(j)
        elif m.command == "RESULT":
            self.results.setdefault(b.get("job_id"), []).append(m)

    def final_ids(self):
        return set(self.results) | set(self.rejected)

    def answered_seqs(self):
        return {b.get("seq") for b in self.accepts + self.rejects}

    def result(self, job_id):
        rs = self.results.get(job_id, [])
        if len(rs) != 1:
            raise AssertionError("expected exactly one RESULT for %s, got %d" % (job_id, len(rs)))
        return rs[0]


class FakeWorker:
    """A worker that only counts: it announces credit with READY, keeps
    heartbeating, and records every JOB the broker sends without answering.
    Lets a test see exactly what the broker dispatches."""

    ENGINE = "scoreline-grading/0.1.0"

    def __init__(self, endpoint, ctx=None, credit=1, worker_id=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.worker_id = worker_id or "fake-%s" % uuid.uuid4().hex[:8]
        self.jobs = []
        self.other = []
        self._send("READY", {"worker": self.worker_id, "credit": credit, "engine": self.ENGINE})
        self._last_hb = time.monotonic()

    def _send(self, command, body):
        self.sock.send_multipart([SIGNATURE, command.encode(), msgpack.packb(body, use_bin_type=True)])

    def pump(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now - self._last_hb >= 0.5:
                self._send("HEARTBEAT", {"inflight": len(self.jobs)})
                self._last_hb = now
            left = deadline - now
            if left <= 0:
                return
            if self.sock.poll(int(min(left, 0.2) * 1000)):
                frames = self.sock.recv_multipart()
                if len(frames) == 3 and frames[0] == SIGNATURE and frames[1] == b"JOB":
                    self.jobs.append(unpack(frames[2]))
                else:
                    self.other.append(frames)

    def take(self, n, timeout, must=True):
        """Wait for n more JOBs; returns those that came (fails if must and
        fewer arrived)."""
        start = len(self.jobs)
        deadline = time.monotonic() + timeout
        while len(self.jobs) - start < n and time.monotonic() < deadline:
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        got = self.jobs[start:start + n]
        if must and len(got) < n:
            raise AssertionError("fake worker got %d of %d JOBs in %.1fs (other: %r)"
                                 % (len(got), n, timeout, self.other[-3:]))
        return got

    def close(self):
        try:
            self._send("DISCONNECT", {"reason": "test finished"})
        except zmq.ZMQError:
            pass
        self.sock.close(0)


def ready_and_die(ctx, endpoint, worker_id, credit=16):
    """A worker that connects, says READY and is gone for good: the READY is
    flushed (linger), then the socket closes before anything comes back, as
    when a worker process dies right after its handshake."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect(endpoint)
    s.send_multipart([SIGNATURE, b"READY", msgpack.packb({"worker": worker_id, "credit": credit})])
    s.close()


# ---- content ----------------------------------------------------------------

def rubric_files():
    return sorted(glob.glob(os.path.join(RUBRIC_DIR, "*.json")))


def attempt_files():
    return sorted(glob.glob(os.path.join(ATTEMPT_DIR, "*.json")))


def rubric_file(rubric_id="csm-smb"):
    """The rubric JSON file whose id is rubric_id."""
    for f in rubric_files():
        with open(f) as fh:
            try:
                if json.load(fh).get("id") == rubric_id:
                    return f
            except ValueError:
                continue
    files = rubric_files()
    if not files:
        raise FileNotFoundError("no rubric JSON under %s" % RUBRIC_DIR)
    return files[0]


def load_attempt(path):
    with open(path) as f:
        return json.load(f)


def job_from_attempt(attempt, job_id=None, **over):
    """A SUBMIT job map from an attempt file's content."""
    job = {
        "job_id": job_id or attempt["job_id"],
        "tenant": attempt.get("tenant", "acme"),
        "rubric": attempt.get("rubric", "csm-smb"),
        "responses": attempt["responses"],
    }
    if attempt.get("candidate"):
        job["candidate"] = attempt["candidate"]
    job.update(over)
    return job


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


# ---- the CLI ----------------------------------------------------------------

class CliResult:
    def __init__(self, cp):
        self.rc = cp.returncode
        self.stdout = cp.stdout
        self.stderr = cp.stderr
        self.out = cp.stdout.decode("utf-8", "replace")
        self.err = cp.stderr.decode("utf-8", "replace")

    def json_lines(self):
        out = []
        for line in self.out.splitlines():
            line = line.strip()
            if line:
                out.append(json.loads(line))
        return out

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out[-4000:], self.err[-4000:])


def run_cli(args, timeout=60, env=None, input=None):
    cp = subprocess.run([binary("scoreline")] + list(args), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=timeout, env=process_env(env),
                        input=input, cwd=SOURCE_DIR)
    return CliResult(cp)


# ---- a whole deployment -----------------------------------------------------

class Cluster:
    """redis + broker + workers for one test, on free ports, torn down by
    close() (SIGTERM with exit-code checks, then kill -9 for anything left)."""

    def __init__(self, tmpdir, prefix=None):
        self.tmpdir = tmpdir
        self.prefix = prefix or "sclt:%s:" % uuid.uuid4().hex[:10]
        self.redis = None
        self.broker = None
        self.workers = []
        self.clients = []
        self.submit_port = free_port()
        self.work_port = free_port()
        self.events_port = free_port()
        self.ctx = zmq.Context()
        self._nworkers = 0
        self.stop_failures = []

    @property
    def submit_ep(self):
        return tcp(self.submit_port)

    @property
    def work_ep(self):
        return tcp(self.work_port)

    @property
    def events_ep(self):
        return tcp(self.events_port)

    def start_redis(self):
        self.redis = RedisServer(self.tmpdir).start()
        return self.redis

    def broker_argv(self, *extra):
        return [binary("scoreline-broker"), "--redis", self.redis.url,
                "--submit", self.submit_ep, "--work", self.work_ep, "--events", self.events_ep,
                "--prefix", self.prefix, "--log-level", "debug"] + list(extra)

    def start_broker(self, *extra, wait=True):
        """Start the broker and wait for event=broker.ready. If one of its
        ports was taken by another process since free_port() chose it, try
        again on new ports (only before any worker or client connected)."""
        for tries in range(3):
            self.broker = Proc("broker", self.broker_argv(*extra), self.tmpdir)
            if not wait:
                return self.broker
            try:
                self.broker.wait_log("event=broker.ready")
                return self.broker
            except AssertionError:
                log = self.broker.log().lower()
                self.broker.kill()
                if tries == 2 or self.workers or self.clients or "in use" not in log:
                    raise
                os.rename(self.broker.log_path, self.broker.log_path + ".%d" % tries)
                self.submit_port, self.work_port, self.events_port = \
                    free_port(), free_port(), free_port()
        return self.broker

    def start_worker(self, *extra, wait=True, credit=None):
        self._nworkers += 1
        wid = "w%d-%s" % (self._nworkers, uuid.uuid4().hex[:6])
        argv = [binary("scoreline-worker"), "--redis", self.redis.url, "--broker", self.work_ep,
                "--prefix", self.prefix, "--id", wid, "--log-level", "debug"]
        if credit is not None:
            argv += ["--credit", str(credit)]
        w = Proc("worker-%d" % self._nworkers, argv + list(extra), self.tmpdir)
        w.worker_id = wid
        self.workers.append(w)
        if wait:
            w.wait_log("event=worker.ready")
        return w

    def start(self, workers=2, broker_args=()):
        self.start_redis()
        self.start_broker(*broker_args)
        for _ in range(workers):
            self.start_worker()
        return self

    def client(self):
        c = Client(self.submit_ep, self.ctx)
        self.clients.append(c)
        return c

    def subscriber(self):
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(self.events_ep)
        self.clients.append(s)
        return s

    def cli(self, *args, **kw):
        return run_cli(["--broker", self.submit_ep, "--redis", self.redis.url,
                        "--prefix", self.prefix] + list(args), **kw)

    def push_rubric(self):
        files = rubric_files()
        if not files:
            raise AssertionError("no rubric JSON files under %s" % RUBRIC_DIR)
        r = self.cli("rubric", "push", *files)
        if r.rc != 0:
            raise AssertionError("scoreline rubric push failed: %r" % r)
        return r

    def redis_client(self):
        """A RESP connection to this cluster's Redis, closed by close()."""
        r = self.redis.client()
        self.clients.append(r)
        return r

    def key(self, suffix):
        return self.prefix + suffix

    def logs(self):
        parts = []
        for p in ([self.broker] if self.broker else []) + self.workers:
            parts.append("==== %s (%s) ====\n%s" % (p.name, p.log_path, p.tail(80)))
        return "\n".join(parts)

    def stop_worker(self, w):
        rc = w.stop()
        if rc != 0:
            self.stop_failures.append("%s exited with %r on SIGTERM" % (w.name, rc))
        return rc

    def close(self):
        """Stop everything: workers, then broker (SIGTERM, exit 0 expected),
        then redis; kill -9 whatever is left. Returns the list of daemons
        that did not exit 0 within the grace period."""
        try:
            for c in self.clients:
                try:
                    if isinstance(c, RespClient):
                        c.close()
                    else:
                        c.close(0)
                except Exception:
                    pass
            for w in self.workers:
                if w.alive():
                    self.stop_worker(w)
            if self.broker and self.broker.alive():
                rc = self.broker.stop()
                if rc != 0:
                    self.stop_failures.append("broker exited with %r on SIGTERM" % (rc,))
        finally:
            for p in self.workers + ([self.broker] if self.broker else []):
                p.kill()
            if self.redis:
                self.redis.stop()
            self.ctx.destroy(0)
        return self.stop_failures


class ClusterTest(unittest.TestCase):
    """Base class: a fresh temp dir per test, daemons' logs printed when the
    test fails, everything stopped in cleanups (also on failure)."""

    maxDiff = 4000

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="scl-it-")
        self._clusters = []
        self.addCleanup(self._teardown)

    def cluster(self, workers=2, broker_args=(), start=True, push=True):
        c = Cluster(self.tmpdir)
        self._clusters.append(c)
        if start:
            c.start(workers=workers, broker_args=broker_args)
            if push:
                c.push_rubric()
        return c

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is not None:  # Python >= 3.11
            for _, err in list(result.failures) + list(result.errors):
                if _ is self:
                    return True
        errors = getattr(outcome, "errors", None)  # Python < 3.11
        if errors:
            return any(exc is not None for _, exc in errors)
        return not getattr(outcome, "success", True)

    def _teardown(self):
        failures = []
        for c in self._clusters:
            failures += c.close()
        failed = self._failed()
        if failed or failures:
            for c in self._clusters:
                sys.stderr.write("\n" + c.logs() + "\n")
        keep = os.environ.get("SCORELINE_KEEP_TMP")
        if not keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if failures and not failed:
            self.fail("daemons did not stop cleanly: %s" % "; ".join(failures))

    def assertStopsCleanly(self, proc, timeout=STOP_TIMEOUT):
        rc = proc.stop(timeout)
        self.assertEqual(rc, 0, "%s did not exit 0 within %ss after SIGTERM (rc=%r); log:\n%s"
                         % (proc.name, timeout, rc, proc.tail()))


def main():
    unittest.main(verbosity=2)

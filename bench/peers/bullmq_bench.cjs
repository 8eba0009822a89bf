// bullmq_bench.cjs - BullMQ no-op jobs, for the side-by-side in BENCHMARKS.md.
//
//   node bullmq_bench.cjs drain   --port P --jobs N --concurrency C
//       add N jobs (addBulk, 1000 per call), then start one Worker and time
//       the first to the last completed job
//   node bullmq_bench.cjs worker  --port P --jobs N --concurrency C   (e2e/latency side)
//   node bullmq_bench.cjs produce --port P --jobs N                   flat out, addBulk
//   node bullmq_bench.cjs produce --port P --rate R --seconds S       open loop, one add() per job
//
// Every job carries t, the time it was added (or due, at a fixed rate), so the
// worker measures add-to-completed latency. The worker prints one line:
//   peer system=bullmq mode=... jobs=N jobs_per_s=X p50_ms=.. p99_ms=.. settings=...
// Settings follow BullMQ's advice for throughput: high worker concurrency and
// removeOnComplete/removeOnFail so Redis does not keep finished jobs.
'use strict';
const path = require('path');
const dir = process.env.BULLMQ_DIR || '/tmp/bench-peers/bullmq';
const { Queue, Worker } = require(path.join(dir, 'node_modules', 'bullmq'));
const { performance } = require('perf_hooks');

const args = process.argv.slice(2);
const mode = args[0];
function opt(name, def) {
  const i = args.indexOf('--' + name);
  return i >= 0 ? Number(args[i + 1]) : def;
}
const port = opt('port', 6379);
const jobs = opt('jobs', 100000);
const concurrency = opt('concurrency', 200);
const rate = opt('rate', 0);
const seconds = opt('seconds', 4);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const QNAME = 'bench';
const now = () => performance.timeOrigin + performance.now(); // ms, sub-ms precision
const jobOpts = { removeOnComplete: true, removeOnFail: true };

function pct(sorted, p) {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1));
  return sorted[i];
}

async function addBulk(queue, n, stamp) {
  for (let done = 0; done < n; ) {
    const k = Math.min(1000, n - done);
    const batch = [];
    for (let i = 0; i < k; i++) batch.push({ name: 'noop', data: { t: stamp ? now() : 0 }, opts: jobOpts });
    await queue.addBulk(batch);
    done += k;
  }
}

function runWorker(expect, label, onStart) {
  return new Promise((resolve) => {
    const lat = [];
    let count = 0, first = 0, minT = Infinity;
    const worker = new Worker(QNAME, async () => {}, {
      connection, concurrency, autorun: false, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 },
    });
    worker.on('completed', (job) => {
      const t = now();
      if (!first) first = t;
      if (job.data.t) {
        lat.push(t - job.data.t);
        if (job.data.t < minT) minT = job.data.t;
      }
      if (++count === expect) {
        const start = label === 'drain' ? first : minT;
        const span = (t - start) / 1000;
        lat.sort((a, b) => a - b);
        console.log(`peer system=bullmq mode=${label} jobs=${count} seconds=${span.toFixed(3)} ` +
          `jobs_per_s=${(count / span).toFixed(0)}` +
          (lat.length ? ` p50_ms=${pct(lat, 50).toFixed(2)} p99_ms=${pct(lat, 99).toFixed(2)} ` +
            `p999_ms=${pct(lat, 99.9).toFixed(2)}` : '') +
          ` settings=concurrency:${concurrency},removeOnComplete,removeOnFail`);
        worker.close(true).then(resolve);
      }
    });
    worker.on('error', (e) => { console.error('worker error', e.message || e); process.exit(1); });
    worker.waitUntilReady().then(() => { if (onStart) onStart(); worker.run(); });
  });
}

async function main() {
  if (mode === 'drain') {
    const q = new Queue(QNAME, { connection });
    await q.obliterate({ force: true }).catch(() => {});
    const t0 = now();
    await addBulk(q, jobs, false);
    console.error(`added ${jobs} jobs in ${((now() - t0) / 1000).toFixed(2)} s`);
    await runWorker(jobs, 'drain');
    await q.close();
  } else if (mode === 'worker') {
    const expect = rate ? Math.round(rate * seconds) : jobs;
    await runWorker(expect, rate ? `latency@${rate}` : 'e2e', () => console.error('worker ready'));
  } else if (mode === 'produce') {
    const q = new Queue(QNAME, { connection });
    await q.waitUntilReady();
    if (!rate) {
      await addBulk(q, jobs, true);
    } else {
      // Open loop: every millisecond, add the jobs that are due, each stamped
      // with the time it was due; add() calls are not awaited one by one.
      const total = Math.round(rate * seconds);
      const t0 = now();
      let sent = 0;
      const pending = new Set();
      await new Promise((resolve) => {
        const tick = () => {
          const due = Math.min(total, Math.floor(((now() - t0) * rate) / 1000));
          while (sent < due) {
            const t = t0 + (sent * 1000) / rate;
            const p = q.add('noop', { t }, jobOpts);
            pending.add(p);
            p.finally(() => pending.delete(p));
            sent++;
          }
          if (sent >= total) return resolve();
          setImmediate(tick);
        };
        tick();
      });
      await Promise.all([...pending]);
    }
    await q.close();
  } else {
    console.error('usage: bullmq_bench.cjs drain|worker|produce --port P ...');
    process.exit(2);
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

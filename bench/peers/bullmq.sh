#!/bin/sh
# bullmq.sh - BullMQ (npm) no-op jobs on a given Redis, for bench/run.
#
#   bench/peers/bullmq.sh install                 npm install bullmq into $BENCH_PEERS_DIR/bullmq
#   bench/peers/bullmq.sh version
#   bench/peers/bullmq.sh drain   --port P --jobs N --concurrency C
#   bench/peers/bullmq.sh e2e     --port P --jobs N --concurrency C   producer + worker together
#   bench/peers/bullmq.sh latency --port P --rate R --seconds S --concurrency C
#
# Prints one "peer system=bullmq ..." line (jobs_per_s, p50_ms, p99_ms) on stdout.
# Nothing is installed inside the repository: node_modules live in
# $BENCH_PEERS_DIR (default /tmp/bench-peers).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BULLMQ_VERSION=${BULLMQ_VERSION:-6.7.0}
export BULLMQ_DIR="${BENCH_PEERS_DIR:-/tmp/bench-peers}/bullmq"
cmd=${1:-}
[ $# -gt 0 ] && shift

case "$cmd" in
install)
    command -v node >/dev/null || { echo "bullmq.sh: node is needed (apt-get install nodejs npm)" >&2; exit 2; }
    if [ ! -f "$BULLMQ_DIR/node_modules/bullmq/package.json" ] || [ ! -f "$BULLMQ_DIR/node_modules/ioredis/package.json" ]; then
        mkdir -p "$BULLMQ_DIR"
        cd "$BULLMQ_DIR"
        [ -f package.json ] || echo '{"name":"bench-peers-bullmq","private":true}' > package.json
        # BullMQ 6 leaves the Redis client to the application: ioredis, its default.
        npm install --no-audit --no-fund --loglevel=error "bullmq@$BULLMQ_VERSION" ioredis >&2
    fi
    ;;
version)
    node -p "require('$BULLMQ_DIR/node_modules/bullmq/package.json').version"
    ;;
drain)
    exec node "$HERE/bullmq_bench.cjs" drain "$@"
    ;;
e2e | latency)
    # The worker and the producer are two processes, as in production.
    node "$HERE/bullmq_bench.cjs" worker "$@" &
    worker=$!
    trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
    sleep 1
    node "$HERE/bullmq_bench.cjs" produce "$@"
    wait $worker
    trap - EXIT INT TERM
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

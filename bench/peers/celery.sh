#!/bin/sh
# celery.sh - Celery (Debian python3-celery) no-op tasks on a given Redis, for bench/run.
#
#   bench/peers/celery.sh install                 apt-get install python3-celery python3-redis
#   bench/peers/celery.sh version
#   bench/peers/celery.sh drain --port P --jobs N [--pool prefork|solo|threads] [--concurrency C]
#
# Sends N no-op tasks, starts one celery worker (default: prefork, 2 processes,
# one per core) and prints one "peer system=celery ..." line with the
# first-to-last completion rate. Uses Debian's /usr/bin/python3.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
cmd=${1:-}
[ $# -gt 0 ] && shift
port=6379 jobs=10000 pool=prefork conc=2
while [ $# -gt 0 ]; do
    case "$1" in
    --port) port=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --pool) pool=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    *) echo "celery.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

case "$cmd" in
install)
    if ! $PY -c 'import celery, redis' 2>/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "celery.sh: run: sudo apt-get install -y python3-celery python3-redis" >&2
            exit 2
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-celery python3-redis >&2
    fi
    ;;
version)
    $PY -c 'import celery; print(celery.__version__)'
    ;;
drain)
    export BENCH_REDIS_PORT=$port
    export SETTINGS="pool:$pool,concurrency:$conc,prefetch:128,ignore_result,no-gossip/mingle/heartbeat"
    cd "$HERE"
    $PY celery_bench.py load "$port" "$jobs"
    $PY -m celery -A celery_bench worker --loglevel=WARNING --pool="$pool" --concurrency="$conc" \
        --without-gossip --without-mingle --without-heartbeat >/dev/null 2>&1 &
    worker=$!
    trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
    $PY celery_bench.py wait "$port" "$jobs"
    kill -TERM $worker 2>/dev/null || true
    wait $worker 2>/dev/null || true
    trap - EXIT INT TERM
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

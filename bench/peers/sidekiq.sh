#!/bin/sh
# sidekiq.sh - Sidekiq (Debian ruby-sidekiq) no-op jobs on a given Redis, for bench/run.
#
#   bench/peers/sidekiq.sh install                apt-get install ruby-sidekiq (as root)
#   bench/peers/sidekiq.sh version
#   bench/peers/sidekiq.sh drain --port P --jobs N [--processes K] [--concurrency C]
#
# Pushes N no-op jobs (push_bulk), starts K sidekiq processes (default 2: one
# per core, Sidekiq's advice for CPU-bound load) with C threads each (default
# 10, Sidekiq's default), and prints one "peer system=sidekiq ..." line with
# the first-to-last completion rate.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
[ $# -gt 0 ] && shift
port=6379 jobs=20000 procs=2 conc=10
while [ $# -gt 0 ]; do
    case "$1" in
    --port) port=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --processes) procs=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    *) echo "sidekiq.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

case "$cmd" in
install)
    if ! command -v sidekiq >/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "sidekiq.sh: run: sudo apt-get install -y ruby-sidekiq" >&2
            exit 2
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q ruby-sidekiq >&2
    fi
    ;;
version)
    ruby -e 'require "sidekiq"; puts Sidekiq::VERSION'
    ;;
drain)
    export REDIS_URL="redis://127.0.0.1:$port/0"
    export SETTINGS="processes:$procs,concurrency:$conc,retry:false"
    ruby "$HERE/sidekiq_bench.rb" load "$port" "$jobs"
    pids=""
    trap 'kill $pids 2>/dev/null || true' EXIT INT TERM
    i=0
    while [ $i -lt "$procs" ]; do
        sidekiq -r "$HERE/sidekiq_bench.rb" -c "$conc" -e production >/dev/null 2>&1 &
        pids="$pids $!"
        i=$((i + 1))
    done
    ruby "$HERE/sidekiq_bench.rb" wait "$port" "$jobs"
    ;;
*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

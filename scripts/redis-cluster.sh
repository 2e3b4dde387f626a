#!/usr/bin/env bash
# A local Redis Cluster for tests and benchmarks: 3 masters + 3 replicas on 127.0.0.1, ports
# BASE..BASE+5 (default 7101..7106; each also uses its cluster-bus port, +10000), data in a temp dir.
#
#   scripts/redis-cluster.sh start [BASE]   start it (idempotent: an answering healthy cluster is left
#                                          as is); prints `started` or `running`, then the seed list
#   scripts/redis-cluster.sh stop [BASE]    stop its six servers and remove its directory
#   scripts/redis-cluster.sh status [BASE]  exit 0 when every node answers and the cluster state is ok
#
# REDIS_CLUSTER_DIR overrides the directory (default: $TMPDIR/wardline-redis-cluster-BASE).
# Needs redis-server and redis-cli (Debian: apt-get install redis-server).
set -euo pipefail

cmd=${1:-}
base=${2:-7101}
dir=${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/wardline-redis-cluster-$base}
ports=$(seq "$base" $((base + 5)))

say() { printf '[redis-cluster %s] %s\n' "$base" "$*" >&2; }
seeds() { local s=""; for p in $ports; do s="$s${s:+,}127.0.0.1:$p"; done; echo "$s"; }
cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}" 2>/dev/null; }

healthy() {
  for p in $ports; do
    [ "$(cli "$p" ping)" = "PONG" ] || return 1
    cli "$p" cluster info | grep -q '^cluster_state:ok' || return 1
  done
}

wait_until() { # wait_until <seconds> <command...>
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

replicas_synced() {
  local synced=0
  for p in $ports; do
    if cli "$p" info replication | grep -q '^master_link_status:up'; then synced=$((synced + 1)); fi
  done
  [ "$synced" -ge 3 ] && [ "$(cli "$base" cluster nodes | grep -c ' slave ')" -ge 3 ]
}

all_answer() { for p in $ports; do [ "$(cli "$p" ping)" = "PONG" ] || return 1; done; }

stop_nodes() {
  for p in $ports; do
    if [ -f "$dir/$p/redis.pid" ]; then
      local pid
      pid=$(cat "$dir/$p/redis.pid" 2>/dev/null || true)
      # only a redis-server of this cluster: the pid may have been reused
      if [ -n "$pid" ] && grep -q "redis-server" "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
  done
}

start() {
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock -w 120 9 || { say "another start still holds $dir.lock"; exit 1; } # parallel starters: one creates, the others find it running
  if healthy; then echo running; seeds; return; fi
  for p in $ports; do
    if [ "$(cli "$p" ping)" = "PONG" ] && [ ! -f "$dir/$p/redis.pid" ]; then
      say "port $p is taken by a server this script did not start"; exit 1
    fi
  done
  stop_nodes
  rm -rf "${dir:?}"/*
  for p in $ports; do
    mkdir -p "$dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
      --cluster-node-timeout 2000 --save "" --appendonly no --dir "$dir/$p" --daemonize yes \
      --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" >/dev/null 9>&- # the lock must not outlive this script
  done
  wait_until 20 all_answer || { say "the servers did not answer"; exit 1; }
  local nodes=()
  for p in $ports; do nodes+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    { say "cluster create failed (see $dir/create.log)"; exit 1; }
  wait_until 30 healthy || { say "cluster_state did not become ok"; exit 1; }
  # every replica in sync with its master (a failover needs one)
  wait_until 30 replicas_synced || { say "replicas did not sync"; exit 1; }
  echo started
  seeds
}

case "$cmd" in
  start) start ;;
  stop) stop_nodes; rm -rf "$dir" "$dir.lock"; say "stopped" ;;
  status) healthy ;;
  *) echo "usage: $0 start|stop|status [base-port]" >&2; exit 2 ;;
esac

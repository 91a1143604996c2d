#!/usr/bin/env bash
# High availability demo: a local etcd, three compactd replicas on one generated
# local-filesystem bucket, the leader killed with SIGKILL, and the handover shown. It shows the
# bucket election (--ownership bucket: one leader writes everything); with the default,
# --ownership stream, every replica holds streams too (docs/scaleout.md, GET /api/v1/streams).
# Needs etcd (Debian: apt-get install etcd-server etcd-client). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO:-$PWD/demo-ha}
PORT_ETCD=23790
TTL=5s

if ! command -v etcd >/dev/null; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  [ -e /usr/sbin/policy-rc.d ] || printf '#!/bin/sh\nexit 101\n' | $sudo_ tee /usr/sbin/policy-rc.d >/dev/null
  $sudo_ chmod +x /usr/sbin/policy-rc.d
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq etcd-server etcd-client
fi
echo "==> building compactd (release)"
cargo build --release --quiet --bin compactd
BIN=$PWD/target/release/compactd

PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$DEMO" && mkdir -p "$DEMO"

echo "==> starting etcd on 127.0.0.1:$PORT_ETCD"
etcd --name demo --data-dir "$DEMO/etcd" --logger=zap --log-level=warn \
  --listen-client-urls http://127.0.0.1:$PORT_ETCD --advertise-client-urls http://127.0.0.1:$PORT_ETCD \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster demo=http://127.0.0.1:23800 --listen-metrics-urls http://127.0.0.1:23810 \
  >"$DEMO/etcd.log" 2>&1 &
PIDS+=($!)
until curl -fs http://127.0.0.1:$PORT_ETCD/health | grep -q true; do sleep 0.1; done

cat >"$DEMO/bucket.yml" <<YAML
type: FILESYSTEM
config:
  directory: $DEMO/bucket
YAML
echo "==> generating a bucket: two streams of 24 x 2h blocks"
"$BIN" tools generate --out "$DEMO/bucket" --series 500 --hours 48 --external-labels cluster=eu-1 --seed 1 >/dev/null
"$BIN" tools generate --out "$DEMO/bucket" --series 500 --hours 48 --external-labels cluster=us-1 --seed 2 >/dev/null

declare -A PID
for i in 1 2 3; do
  "$BIN" run --objstore.config-file "$DEMO/bucket.yml" --data-dir "$DEMO/data-$i" --wait --wait-interval 1h \
    --delete-delay 0s --downsampling.disable --http-address 127.0.0.1:1090$i \
    --etcd.url http://127.0.0.1:$PORT_ETCD --etcd.prefix /compactd/demo --etcd.lease-ttl $TTL \
    --objstore.op-timeout 1s --leader.takeover-delay 2s --ownership bucket --node.name replica-$i >"$DEMO/replica-$i.log" 2>&1 &
  PID[replica-$i]=$!
  PIDS+=($!)
done
echo "==> three replicas started (HTTP on 127.0.0.1:10901..10903, logs in $DEMO/replica-*.log)"

leader_of() { curl -fs "http://127.0.0.1:1090$1/api/v1/leader" 2>/dev/null || true; }
# grep reads all of curl's output (no -q): an early exit would fail curl under pipefail.
is_leader() { curl -fs "http://127.0.0.1:1090$1/metrics" 2>/dev/null | grep '^compactd_leader 1' >/dev/null; }
current_leader() { for i in "$@"; do if is_leader "$i"; then echo "replica-$i"; return; fi; done; }

LEADER=""
until [ -n "$LEADER" ]; do sleep 0.2; LEADER=$(current_leader 1 2 3 || true); done
echo "==> leader: $LEADER"
for i in 1 2 3; do echo "    replica-$i /api/v1/leader: $(leader_of $i)"; done
echo "==> etcdctl elect -l /compactd/demo/election (the election as etcd sees it)"
timeout 1 etcdctl --endpoints=http://127.0.0.1:$PORT_ETCD elect -l /compactd/demo/election || true

echo "==> waiting for the leader to compact the bucket"
until grep -q "compaction iteration done" "$DEMO/$LEADER.log"; do sleep 0.5; done
"$BIN" tools bucket ls --objstore.config-file "$DEMO/bucket.yml"

echo "==> kill -9 $LEADER"
T0=$(date +%s.%N)
kill -9 "${PID[$LEADER]}"
REST=()
for i in 1 2 3; do [ "replica-$i" = "$LEADER" ] || REST+=("$i"); done
NEW=""
until [ -n "$NEW" ]; do sleep 0.1; NEW=$(current_leader "${REST[@]}" || true); done
T1=$(date +%s.%N)
printf '==> %s leads after %s s (lease TTL %s + takeover delay 2s)\n' "$NEW" "$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')" "$TTL"
grep -E "leader changed|elected|leading" "$DEMO/$NEW.log" | tail -4
echo "==> who wrote what (compactd tools bucket audit)"
"$BIN" tools bucket audit --objstore.config-file "$DEMO/bucket.yml"

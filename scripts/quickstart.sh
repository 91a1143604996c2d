#!/usr/bin/env bash
# Quick start: build compactd, generate a local-filesystem bucket of sample 2h blocks, run the
# compactor on it once as a single instance, and show the bucket before and after.
# Safe to re-run: it starts from a clean ./demo each time.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO:-$PWD/demo}

# A C toolchain, protoc with the protobuf includes, the Rust toolchain: whatever is missing.
scripts/deps.sh build
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

echo "==> building compactd (release)"
cargo build --release --quiet --bin compactd
BIN=$PWD/target/release/compactd

rm -rf "$DEMO"
mkdir -p "$DEMO"
cat >"$DEMO/bucket.yml" <<YAML
type: FILESYSTEM
config:
  directory: $DEMO/bucket
YAML
echo "==> generating a sample bucket: two streams (cluster=eu-1, cluster=us-1) of 12 x 2h blocks, 1000 series each"
"$BIN" tools generate --out "$DEMO/bucket" --series 1000 --hours 24 --external-labels cluster=eu-1 --seed 1 >/dev/null
"$BIN" tools generate --out "$DEMO/bucket" --series 1000 --hours 24 --external-labels cluster=us-1 --seed 2 >/dev/null
echo "==> the bucket before (compactd tools bucket ls)"
"$BIN" tools bucket ls --objstore.config-file "$DEMO/bucket.yml"
echo "==> compactd run: one pass as a single instance (no --etcd.url), sources deleted at once (--delete-delay 0s)"
"$BIN" run --objstore.config-file "$DEMO/bucket.yml" --data-dir "$DEMO/data" --http-address 127.0.0.1:0 \
  --delete-delay 0s --downsampling.disable
echo "==> the bucket after"
"$BIN" tools bucket ls --objstore.config-file "$DEMO/bucket.yml"
"$BIN" tools bucket verify --objstore.config-file "$DEMO/bucket.yml"

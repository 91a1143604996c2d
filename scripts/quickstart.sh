#!/usr/bin/env bash
# Quick start: build compactd, generate a local folder of sample 2h blocks, compact them into
# one block and verify the result. Safe to re-run: it starts from a clean ./demo each time.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO:-$PWD/demo}

if ! command -v cc >/dev/null; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq build-essential
fi
if ! command -v cargo >/dev/null; then
  echo "==> installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

echo "==> building compactd (release)"
cargo build --release --quiet --bin compactd
BIN=$PWD/target/release/compactd

rm -rf "$DEMO"
echo "==> generating 12 x 2h sample blocks (1000 series, 15s scrape interval) in $DEMO/blocks"
"$BIN" tools generate --out "$DEMO/blocks" --series 1000 --hours 24 --external-labels cluster=demo,replica=a
echo "==> compacting them into one block in $DEMO/compacted"
"$BIN" tools compact --out "$DEMO/compacted" "$DEMO"/blocks/*
echo "==> verifying the compacted block"
"$BIN" tools inspect "$DEMO"/compacted/*

#!/usr/bin/env bash
# Builds the cargo-fuzz targets (stable toolchain, no sanitizer), generates their seed corpora
# from real blocks into fuzz/corpus/<target>/ (gitignored), then runs each target for a fixed
# time and fails on any finding (crash, panic, timeout, out-of-memory). See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    # default: 20 s, every target
#
# Findings land in fuzz/artifacts/<target>/; reproduce one with
# `cd fuzz && cargo fuzz run --sanitizer none <target> <artifact>`.
#
# The fuzz build (every dependency in release with coverage instrumentation) takes ~9 minutes
# cold on 2 cores, so its target directory lives outside the checkout and is reused by later
# runs and fresh clones: COMPACTD_FUZZ_TARGET_DIR, default ~/.cache/compactd/fuzz-target. Only
# compactd itself is rebuilt when it changed (~2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-20}
shift || true

log() { printf '==> %s\n' "$*"; }

command -v cargo-fuzz >/dev/null || {
  log "installing cargo-fuzz"
  cargo install -q cargo-fuzz --locked
}

FUZZ_TARGET_DIR=${COMPACTD_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/compactd/fuzz-target}
mkdir -p "$FUZZ_TARGET_DIR"
cd "$ROOT/fuzz"
mapfile -t ALL < <(cargo fuzz list)
TARGETS=("$@")
if (($# == 0)); then TARGETS=("${ALL[@]}"); fi

# The default profile: optimized, with debug assertions and overflow checks.
log "cargo fuzz build --sanitizer none (${#ALL[@]} targets)"
start=$(date +%s)
cargo fuzz build --sanitizer none --target-dir "$FUZZ_TARGET_DIR"
log "fuzz build took $(($(date +%s) - start)) s"

# Seed corpora from real blocks: floats only, and with native histograms (both histogram
# encodings), written by the compactd binary the test suite builds anyway.
log "generating seed corpora"
cargo build -q --manifest-path "$ROOT/Cargo.toml" --bin compactd
GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT
"$ROOT/target/debug/compactd" tools generate --out "$GEN/float" --series 8 --hours 2 >/dev/null
"$ROOT/target/debug/compactd" tools generate --out "$GEN/hist" --series 20 --hours 2 \
  --histograms --external-labels cluster=eu-1,replica=a --seed 7 >/dev/null
CORPUS=$ROOT/fuzz/corpus
python3 - "$GEN" "$CORPUS" "$ROOT" <<'EOF'
"""Cuts real blocks into seeds: whole files, truncated segments and single chunks."""
import glob, json, os, struct, sys

gen, corpus, root = sys.argv[1:4]


def seed(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def uvarint(b, i):
    value = shift = 0
    while True:
        byte = b[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7


def records(segment):
    """(offset, end, encoding, data) of each record of a chunk segment."""
    i = 8
    while i < len(segment):
        length, j = uvarint(segment, i)
        end = j + 1 + length + 4
        yield i, end, segment[j], segment[j + 1 : j + 1 + length]
        i = end


for block in sorted(glob.glob(os.path.join(gen, "*", "*"))):
    tag = os.path.basename(os.path.dirname(block))
    seed("index_reader", tag, open(os.path.join(block, "index"), "rb").read())
    meta = open(os.path.join(block, "meta.json"), "rb").read()
    seed("meta_json", tag + "-meta", meta)
    seed("tombstones", tag, open(os.path.join(block, "tombstones"), "rb").read())
    segment = open(os.path.join(block, "chunks", "000001"), "rb").read()
    # Segments cut after the record that crosses 2 KiB and 8 KiB; the first byte of a
    # chunk_segment input counts the explicit refs that follow (none here).
    for limit in (2048, 8192):
        end = next((e for _, e, _, _ in records(segment) if e >= limit), len(segment))
        seed("chunk_segment", f"{tag}-{limit}", b"\0" + segment[:end])
    # Explicit refs: the first three records plus one out of range.
    offsets = [o for o, _, _, _ in records(segment)][:3] + [1 << 30]
    end = next(e for _, e, _, _ in records(segment) if e >= 2048)
    refs = b"".join(b"\0" + struct.pack(">I", o) for o in offsets)
    seed("chunk_segment", f"{tag}-refs", bytes([len(offsets)]) + refs + segment[:end])
    taken = {}
    for _, _, encoding, data in records(segment):
        n = taken.get(encoding, 0)
        if n >= 6:
            continue
        taken[encoding] = n + 1
        if encoding == 1:
            seed("xor_chunk", f"{tag}-{n}", data)
        elif encoding in (2, 3):
            seed("histogram_chunk", f"{tag}-{encoding}-{n}", bytes([encoding - 2]) + data)

# Prometheus' format v1 index test file.
v1 = os.path.join(root, "src", "tsdb", "index", "testdata", "index_format_v1")
seed("index_reader", "v1", open(v1, "rb").read())

ulid = "01JGFSEP804PH4QCNXR1YMZE4J"
for name, obj in {
    "deletion-mark": {"id": ulid, "version": 1, "details": "source of compacted block", "deletion_time": 1735700000},
    "no-compact-mark": {"id": ulid, "version": 1, "details": "", "no_compact_time": 1735700000, "reason": "manual"},
    "no-downsample-mark": {"id": ulid, "version": 1, "details": "", "no_downsample_time": 1735700000},
    "fence": {"epoch": 7, "holder": "compactd-0", "seq": 42, "renewed_unix_ms": 1735700000000},
}.items():
    seed("meta_json", name, json.dumps(obj).encode())

configs = {
    "filesystem": "type: FILESYSTEM\nconfig:\n  directory: /data/bucket\n",
    "s3": """type: s3
config:
  bucket: thanos
  endpoint: minio.example.com:9000
  region: eu-west-1
  access_key: $(AWS_ACCESS_KEY_ID)
  secret_key: $(AWS_SECRET_ACCESS_KEY)
  insecure: true
  bucket_lookup_type: path
  part_size: 134217728
  sse_config:
    type: SSE-S3
  http_config:
    idle_conn_timeout: 1m30s
    insecure_skip_verify: false
    max_idle_conns: 100
prefix: /tenant-a/
""",
    "gcs": "type: GCS\nconfig:\n  bucket: thanos\n  service_account: ''\n",
    "azure": "type: AZURE\nconfig:\n  storage_account: acct\n  storage_account_key: a2V5\n  container: thanos\n  endpoint: blob.core.windows.net\n  max_retries: 3\n",
}
for name, text in configs.items():
    seed("objstore_yaml", name, text.encode())

# core_step programs (see fuzz_targets/core_step.rs): a header (flags, block count — bit 4
# elects on the bucket —, two bytes per block: 8 level-1 2h blocks of one stream), then ops.
# Op 6 answers everything pending truthfully (election, fence, sync, jobs, uploads, commits),
# op 0 advances the clocks (index 7: 2 s, the takeover delay), op 2 jumps to the node's next
# timer (keepalives and fence renewals included) and ticks.
blocks = b"".join(bytes([i, 4]) for i in range(8))
happy = bytes([6] * 5 + [0, 7] + [2, 6] * 60)
for name, flags, count in (
    ("elected", 1, 8),
    ("single", 0, 8),
    ("elected-downsampling", 3, 8),
    ("single-retention", 0x40, 8),
    ("elected-bucket", 1, 0x18),
):
    seed("core_step", name, bytes([flags, count]) + blocks + happy)
EOF
for t in "${ALL[@]}"; do
  printf '    %-16s %4d seeds\n' "$t" "$(find "$CORPUS/$t" -type f 2>/dev/null | wc -l)"
done

# -timeout: an input that takes over 10 s is a finding (a hang), as is one that allocates
# more than -rss_limit_mb.
for t in "${TARGETS[@]}"; do
  log "fuzzing $t for ${SECONDS_PER_TARGET} s"
  if ! cargo fuzz run --sanitizer none --target-dir "$FUZZ_TARGET_DIR" "$t" "$CORPUS/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$GEN/$t.log" 2>&1; then
    tail -n 60 "$GEN/$t.log" >&2
    echo "error: fuzz target $t found a failure; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ *DONE' "$GEN/$t.log" | sed 's/^/    /'
done
log "fuzzing: no findings"

#!/bin/sh
# Regenerates ../thanos_histograms.json (not run in CI). Needs Go (1.19 works: the steps
# below patch out the few newer language features) and bare mirrors of
# prometheus/prometheus and thanos-io/thanos:
#   PROM=/path/to/prometheus.git THANOS=/path/to/thanos.git ./gen.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cd "$work"
mkdir -p prom
for f in $(git -C "$PROM" ls-tree --name-only v0.309.1 model/histogram/ tsdb/chunkenc/ model/value/ |
	grep -v _test.go | grep -v convert.go | grep -v test_utils.go); do
	mkdir -p "prom/$(dirname "$f")"
	git -C "$PROM" show "v0.309.1:$f" >"prom/$f"
done
git -C "$THANOS" show HEAD:pkg/compact/downsample/downsample.go >ds.go
git -C "$THANOS" show HEAD:pkg/compact/downsample/aggr.go >aggr.go
printf 'module github.com/prometheus/prometheus\n\ngo 1.19\n' >prom/go.mod
mkdir -p prom/cmd/thh
cp "$here/main.go" prom/cmd/thh/
python3 "$here/extract.py" ds.go aggr.go prom/cmd/thh/thanos.go prom
cd prom
GOPROXY=off go build -o ../thh ./cmd/thh
../thh >"$here/../thanos_histograms.json"

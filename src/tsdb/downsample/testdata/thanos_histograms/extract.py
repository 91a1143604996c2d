"""Copies the functions of Thanos' downsampling that histograms use into one Go file, and
patches Prometheus' sources for Go 1.19 (range over int, slices, min/max builtins)."""
import glob
import re
import sys

ds_path, aggr_path, out_path, prom = sys.argv[1:5]


def code(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"`[^`]*`", "``", line)
    i = line.find("//")
    return line if i < 0 else line[:i]


def decls(src):
    out, lines, i = {}, src.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(func (?:\([^)]*\) )?(\w+)|type (\w+)|var (\w+)|const \(|const (\w+))", line)
        if not m:
            i += 1
            continue
        name = m.group(2) or m.group(3) or m.group(4) or m.group(5) or "const"
        c = code(line).rstrip()
        k = i
        if line.startswith("func") or c.endswith("{"):
            depth, seen = 0, False
            while True:
                cc = code(lines[k])
                depth += cc.count("{") - cc.count("}")
                seen = seen or "{" in cc
                if seen and depth <= 0:
                    break
                k += 1
        elif c.endswith("("):
            depth = 0
            while True:
                cc = code(lines[k])
                depth += cc.count("(") - cc.count(")")
                if depth <= 0:
                    break
                k += 1
        mm = re.match(r"^func \(\w+ \*?(\w+)\) (\w+)", line)
        out.setdefault(mm.group(1) + "." + mm.group(2) if mm else name, []).append("\n".join(lines[i : k + 1]))
        i = k + 1
    return out


WANT = """currentWindow rangeFullness targetChunkCount histogramAggregator newHistogramAggregator
histogramAggregator.reset mustHistogramOp histogramAggregator.add
histogramAggregator.processedSamples floatAggregator.processedSamples
newHistogramAggrChunkBuilder minSchema downsampleHistogramBatch sampleAggregator
aggrChunkBuilder.addHistogram aggrChunkBuilder.appendFloatHistogram isGaugeSamples
floatAggregator floatAggregator.reset floatAggregator.add aggrChunkBuilder
mustGetFloatAggregator mustGetHistogramAggregator aggrChunkBuilder.encode downsampleRawLoop
downsampleHistogramAggrBatch genericAggregate downsampleBatch isHistogramAggrChunk
downsampleAggrLoop expandXorChunkIterator expandHistogramChunkIterator
expandFloatHistogramChunkIterator sample downsampleAggrFunc cutNewChunk""".split()
SKIP = {"AggrChunk.Appender", "AggrChunk.Iterator", "AggrChunk.Compact", "AggrChunk.Reset"}
ds, ag = decls(open(ds_path).read()), decls(open(aggr_path).read())
parts = [body for w in WANT for body in ds[w]]
parts += [body for k, v in ag.items() if k not in SKIP for body in v]
header = """package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

type chunksMeta struct {
	MinTime, MaxTime int64
	Chunk            chunkenc.Chunk
}

"""
open(out_path, "w").write((header + "\n\n".join(parts) + "\n").replace("chunks.Meta", "chunksMeta"))

MINMAX = """
func min[T int | int32 | int64 | float64 | uint8](a, b T) T {
	if a < b {
		return a
	}
	return b
}

func max[T int | int32 | int64 | float64 | uint8](a, b T) T {
	if a > b {
		return a
	}
	return b
}
"""
for f in glob.glob(prom + "/model/histogram/*.go") + glob.glob(prom + "/tsdb/chunkenc/*.go"):
    s = open(f).read()
    s = re.sub(r"for (\w+) := range (numHistograms|numSpans|bucketsPerSide|numPBuckets|numNBuckets) \{",
               r"for \1 := 0; \1 < int(\2); \1++ {", s)
    s = re.sub(r"for range (\w+(?:\.\w+)*) \{", r"for _i := 0; _i < int(\1); _i++ {", s)
    s = s.replace("slices.Equal(", "slicesEqual(").replace('\t"slices"\n', "")
    open(f, "w").write(s)
with open(prom + "/model/histogram/histogram.go", "a") as f:
    f.write(MINMAX + """
func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
""")
with open(prom + "/tsdb/chunkenc/chunk.go", "a") as f:
    f.write(MINMAX)

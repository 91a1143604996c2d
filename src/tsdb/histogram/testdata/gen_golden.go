// gen_golden: golden native histogram chunks for compactd's histogram codec, written by
// Prometheus 2.42's chunkenc appenders (the version of our Go baseline and promtool).
//
// It is not run in CI. To regenerate src/tsdb/histogram/testdata/*.json (Debian bookworm, the
// 2.42 source unpacked by /work/shared/bench/gocompact/build.sh into /tmp/gocompact-build):
//
//	mkdir -p /tmp/histgolden && cp gen_golden.go /tmp/histgolden/main.go && cd /tmp/histgolden
//	GOPATH=/tmp/gocompact-build/gopath:/usr/share/gocode GO111MODULE=off GOPROXY=off \
//	  GOCACHE=/tmp/gocompact-build/gocache GOFLAGS= go run . OUT_DIR
//
// 2.42's appenders expose Appendable/AppendableGauge/Recode/RecodeHistogram and leave chunk
// cutting and counter-reset headers to the caller (the head). encode() below drives them the
// way current Prometheus' AppendHistogram(prev, t, h, appendOnly=false) and
// seriesToChunkEncoder do. The cases are those where 2.42 and current Prometheus agree: 2.42
// treats a bucket that disappears as a counter reset even when it was empty (current
// Prometheus keeps appending), and gives a counter histogram after a gauge chunk the unknown
// header (current: not-reset), so no case has those.
//
// Each case file holds the input samples, the chunks (time range, encoding, hex bytes) and
// the samples as 2.42's iterators decode them. Floats are 16-hex-digit bit patterns.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

const samplesPerChunk = 120 // seriesToChunkEncoderSplit

type jsonSpan [2]int64 // offset, length

type jsonSample struct {
	T               int64      `json:"t"`
	Hint            int        `json:"hint"`
	Schema          int32      `json:"schema"`
	ZeroThreshold   string     `json:"zero_threshold"`
	ZeroCount       string     `json:"zero_count"` // integer histograms: decimal; float: bits
	Count           string     `json:"count"`
	Sum             string     `json:"sum"`
	PositiveSpans   []jsonSpan `json:"positive_spans"`
	NegativeSpans   []jsonSpan `json:"negative_spans"`
	PositiveBuckets []string   `json:"positive_buckets"`
	NegativeBuckets []string   `json:"negative_buckets"`
}

type jsonChunk struct {
	MinTime  int64  `json:"min_time"`
	MaxTime  int64  `json:"max_time"`
	Encoding int    `json:"encoding"`
	Data     string `json:"data"`
}

type golden struct {
	Name    string       `json:"name"`
	Kind    string       `json:"kind"` // "histogram" or "float_histogram"
	Samples []jsonSample `json:"samples"`
	// Chunks as compaction cuts them; HeadChunks as the head does (the header of a chunk cut
	// at 120 samples is then derived from the previous chunk), when they differ.
	Chunks     []jsonChunk  `json:"chunks"`
	HeadChunks []jsonChunk  `json:"head_chunks"`
	Decoded    []jsonSample `json:"decoded"` // as 2.42 decodes the chunks; empty for long cases
}

func bits(f float64) string { return fmt.Sprintf("%016x", math.Float64bits(f)) }

func spans(s []histogram.Span) []jsonSpan {
	out := []jsonSpan{}
	for _, x := range s {
		out = append(out, jsonSpan{int64(x.Offset), int64(x.Length)})
	}
	return out
}

func intSample(t int64, h *histogram.Histogram) jsonSample {
	s := jsonSample{T: t, Hint: int(h.CounterResetHint), Schema: h.Schema,
		ZeroThreshold: bits(h.ZeroThreshold), ZeroCount: fmt.Sprint(h.ZeroCount),
		Count: fmt.Sprint(h.Count), Sum: bits(h.Sum),
		PositiveSpans: spans(h.PositiveSpans), NegativeSpans: spans(h.NegativeSpans),
		PositiveBuckets: []string{}, NegativeBuckets: []string{}}
	for _, b := range h.PositiveBuckets {
		s.PositiveBuckets = append(s.PositiveBuckets, fmt.Sprint(b))
	}
	for _, b := range h.NegativeBuckets {
		s.NegativeBuckets = append(s.NegativeBuckets, fmt.Sprint(b))
	}
	return s
}

func floatSample(t int64, h *histogram.FloatHistogram) jsonSample {
	s := jsonSample{T: t, Hint: int(h.CounterResetHint), Schema: h.Schema,
		ZeroThreshold: bits(h.ZeroThreshold), ZeroCount: bits(h.ZeroCount),
		Count: bits(h.Count), Sum: bits(h.Sum),
		PositiveSpans: spans(h.PositiveSpans), NegativeSpans: spans(h.NegativeSpans),
		PositiveBuckets: []string{}, NegativeBuckets: []string{}}
	for _, b := range h.PositiveBuckets {
		s.PositiveBuckets = append(s.PositiveBuckets, bits(b))
	}
	for _, b := range h.NegativeBuckets {
		s.NegativeBuckets = append(s.NegativeBuckets, bits(b))
	}
	return s
}

type sample struct {
	t  int64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// chunkState is the open chunk of encode().
type chunkState struct {
	chk  chunkenc.Chunk
	app  chunkenc.Appender
	mint int64
	maxt int64
}

func setHeader(c chunkenc.Chunk, h chunkenc.CounterResetHeader) {
	switch x := c.(type) {
	case *chunkenc.HistogramChunk:
		x.SetCounterResetHeader(h)
	case *chunkenc.FloatHistogramChunk:
		x.SetCounterResetHeader(h)
	}
}

func newChunk(float bool) chunkState {
	var c chunkenc.Chunk = chunkenc.NewHistogramChunk()
	if float {
		c = chunkenc.NewFloatHistogramChunk()
	}
	app, err := c.Appender()
	if err != nil {
		panic(err)
	}
	return chunkState{chk: c, app: app, mint: math.MaxInt64}
}

// appendTo appends one sample as current Prometheus' AppendHistogram(prev, t, h, false) does;
// it returns the chunk the sample went into and whether that is a new one.
func appendTo(cur chunkState, prev *chunkState, s sample) (chunkState, bool) {
	float := s.fh != nil
	hint := histogram.UnknownCounterReset
	if float {
		hint = s.fh.CounterResetHint
	} else {
		hint = s.h.CounterResetHint
	}
	appendRaw := func(c *chunkState) {
		if float {
			c.app.AppendFloatHistogram(s.t, s.fh)
		} else {
			c.app.AppendHistogram(s.t, s.h)
		}
	}
	if cur.chk.NumSamples() == 0 {
		appendRaw(&cur)
		switch {
		case hint == histogram.GaugeType:
			setHeader(cur.chk, chunkenc.GaugeType)
		case hint == histogram.CounterReset:
			setHeader(cur.chk, chunkenc.CounterReset)
		case prev != nil:
			// Both versions: not reset when it fits, reset on a reset, else unknown.
			_, _, ok, reset := appendable(*prev, s)
			switch {
			case reset:
				setHeader(cur.chk, chunkenc.CounterReset)
			case ok:
				setHeader(cur.chk, chunkenc.NotCounterReset)
			default:
				setHeader(cur.chk, chunkenc.UnknownCounterReset)
			}
		}
		return cur, false
	}
	if hint == histogram.GaugeType {
		return appendGauge(cur, s)
	}
	pI, nI, ok, reset := appendable(cur, s)
	if hint == histogram.CounterReset {
		ok, reset = false, true
	}
	if !ok || reset {
		h := chunkenc.UnknownCounterReset
		if reset {
			h = chunkenc.CounterReset
		}
		next := newChunk(float)
		setHeader(next.chk, h)
		appendRaw(&next)
		return next, true
	}
	if len(pI) > 0 || len(nI) > 0 {
		if float {
			cur.chk, cur.app = cur.app.(*chunkenc.FloatHistogramAppender).Recode(pI, nI, s.fh.PositiveSpans, s.fh.NegativeSpans)
		} else {
			cur.chk, cur.app = cur.app.(*chunkenc.HistogramAppender).Recode(pI, nI, s.h.PositiveSpans, s.h.NegativeSpans)
		}
	}
	appendRaw(&cur)
	return cur, false
}

func appendable(c chunkState, s sample) ([]chunkenc.Insert, []chunkenc.Insert, bool, bool) {
	if s.fh != nil {
		return c.app.(*chunkenc.FloatHistogramAppender).Appendable(s.fh)
	}
	return c.app.(*chunkenc.HistogramAppender).Appendable(s.h)
}

func appendGauge(cur chunkState, s sample) (chunkState, bool) {
	if s.fh != nil {
		app := cur.app.(*chunkenc.FloatHistogramAppender)
		pI, nI, pB, nB, pS, nS, ok := app.AppendableGauge(s.fh)
		if !ok {
			next := newChunk(true)
			setHeader(next.chk, chunkenc.GaugeType)
			next.app.AppendFloatHistogram(s.t, s.fh)
			return next, true
		}
		if len(pB)+len(nB) > 0 {
			s.fh.PositiveSpans, s.fh.NegativeSpans = pS, nS
			app.RecodeHistogramm(s.fh, pB, nB)
		}
		if len(pI) > 0 || len(nI) > 0 {
			cur.chk, cur.app = app.Recode(pI, nI, s.fh.PositiveSpans, s.fh.NegativeSpans)
		}
		cur.app.AppendFloatHistogram(s.t, s.fh)
		return cur, false
	}
	app := cur.app.(*chunkenc.HistogramAppender)
	pI, nI, pB, nB, pS, nS, ok := app.AppendableGauge(s.h)
	if !ok {
		next := newChunk(false)
		setHeader(next.chk, chunkenc.GaugeType)
		next.app.AppendHistogram(s.t, s.h)
		return next, true
	}
	if len(pB)+len(nB) > 0 {
		s.h.PositiveSpans, s.h.NegativeSpans = pS, nS
		app.RecodeHistogram(s.h, pB, nB)
	}
	if len(pI) > 0 || len(nI) > 0 {
		cur.chk, cur.app = app.Recode(pI, nI, s.h.PositiveSpans, s.h.NegativeSpans)
	}
	cur.app.AppendHistogram(s.t, s.h)
	return cur, false
}

// encode is seriesToChunkEncoder for one histogram type; head mode passes the previous chunk
// when cutting at 120 samples, as the head does.
func encode(samples []sample, head bool) []chunkState {
	var done []chunkState
	float := samples[0].fh != nil
	cur := newChunk(float)
	i := 0
	for _, s := range samples {
		var prev *chunkState
		if i >= samplesPerChunk {
			done = append(done, cur)
			if head {
				p := cur
				prev = &p
			}
			cur = newChunk(float)
			i = 0
		}
		next, isNew := appendTo(cur, prev, s)
		if isNew {
			done = append(done, cur)
			i = 0
		}
		cur = next
		if cur.mint == math.MaxInt64 {
			cur.mint = s.t
		}
		cur.maxt = s.t
		i++
	}
	return append(done, cur)
}

func decode(c chunkenc.Chunk) []jsonSample {
	var out []jsonSample
	it := c.Iterator(nil)
	for {
		switch it.Next() {
		case chunkenc.ValHistogram:
			if c.Encoding() == chunkenc.EncFloatHistogram {
				t, h := it.AtFloatHistogram()
				out = append(out, floatSample(t, h))
			} else {
				t, h := it.AtHistogram()
				out = append(out, intSample(t, h))
			}
		case chunkenc.ValFloatHistogram:
			t, h := it.AtFloatHistogram()
			out = append(out, floatSample(t, h))
		case chunkenc.ValNone:
			if it.Err() != nil {
				panic(it.Err())
			}
			return out
		default:
			panic("unexpected value type")
		}
	}
}

func write(dir, name string, samples []sample, head bool) {
	g := golden{Name: name, Kind: "histogram"}
	if samples[0].fh != nil {
		g.Kind = "float_histogram"
	}
	for _, s := range samples {
		if s.fh != nil {
			g.Samples = append(g.Samples, floatSample(s.t, s.fh.Copy()))
		} else {
			g.Samples = append(g.Samples, intSample(s.t, s.h.Copy()))
		}
	}
	for _, c := range encode(copySamples(samples), false) {
		g.Chunks = append(g.Chunks, jsonChunk{MinTime: c.mint, MaxTime: c.maxt,
			Encoding: int(c.chk.Encoding()), Data: hex.EncodeToString(c.chk.Bytes())})
		if !head {
			// The long case (the only one with head chunks) is not repeated decoded.
			g.Decoded = append(g.Decoded, decode(c.chk)...)
		}
	}
	if head {
		for _, c := range encode(copySamples(samples), true) {
			g.HeadChunks = append(g.HeadChunks, jsonChunk{MinTime: c.mint, MaxTime: c.maxt,
				Encoding: int(c.chk.Encoding()), Data: hex.EncodeToString(c.chk.Bytes())})
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), marshal(g), 0o644); err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d samples, %d chunks\n", name, len(samples), len(g.Chunks))
}

// copySamples copies the samples, which encode may change (gauge recoding).
func copySamples(samples []sample) []sample {
	copies := make([]sample, len(samples))
	for i, s := range samples {
		copies[i].t = s.t
		if s.fh != nil {
			copies[i].fh = s.fh.Copy()
		} else {
			copies[i].h = s.h.Copy()
		}
	}
	return copies
}

// marshal writes the case as JSON with one sample or chunk per line.
func marshal(g golden) []byte {
	line := func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	list := func(name string, n int, item func(int) interface{}) string {
		out := fmt.Sprintf(" %q: [\n", name)
		for i := 0; i < n; i++ {
			sep := ","
			if i == n-1 {
				sep = ""
			}
			out += "  " + line(item(i)) + sep + "\n"
		}
		return out + " ]"
	}
	out := "{\n"
	out += fmt.Sprintf(" \"name\": %q,\n \"kind\": %q,\n", g.Name, g.Kind)
	out += list("samples", len(g.Samples), func(i int) interface{} { return g.Samples[i] }) + ",\n"
	out += list("chunks", len(g.Chunks), func(i int) interface{} { return g.Chunks[i] }) + ",\n"
	out += list("head_chunks", len(g.HeadChunks), func(i int) interface{} { return g.HeadChunks[i] }) + ",\n"
	out += list("decoded", len(g.Decoded), func(i int) interface{} { return g.Decoded[i] }) + "\n"
	return []byte(out + "}\n")
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen_golden OUT_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	for _, c := range cases() {
		write(dir, c.name, c.samples, c.head)
	}
}

type goldenCase struct {
	name    string
	samples []sample
	head    bool
}

// ---- Sample construction -------------------------------------------------------------

func sp(pairs ...int) []histogram.Span {
	var out []histogram.Span
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, histogram.Span{Offset: int32(pairs[i]), Length: uint32(pairs[i+1])})
	}
	return out
}

// ih builds an integer histogram from absolute bucket counts; the count is the sum of all
// buckets and the zero count unless count is given (>= 0).
func ih(hint histogram.CounterResetHint, schema int32, zt float64, zc uint64, sum float64,
	ps []histogram.Span, pos []int64, ns []histogram.Span, neg []int64) *histogram.Histogram {
	h := &histogram.Histogram{CounterResetHint: hint, Schema: schema, ZeroThreshold: zt,
		ZeroCount: zc, Sum: sum, PositiveSpans: ps, NegativeSpans: ns}
	total := zc
	var prev int64
	for _, c := range pos {
		h.PositiveBuckets = append(h.PositiveBuckets, c-prev)
		prev = c
		total += uint64(c)
	}
	prev = 0
	for _, c := range neg {
		h.NegativeBuckets = append(h.NegativeBuckets, c-prev)
		prev = c
		total += uint64(c)
	}
	h.Count = total
	return h
}

func fhist(hint histogram.CounterResetHint, schema int32, zt, zc, sum float64,
	ps []histogram.Span, pos []float64, ns []histogram.Span, neg []float64) *histogram.FloatHistogram {
	h := &histogram.FloatHistogram{CounterResetHint: hint, Schema: schema, ZeroThreshold: zt,
		ZeroCount: zc, Sum: sum, PositiveSpans: ps, NegativeSpans: ns,
		PositiveBuckets: pos, NegativeBuckets: neg}
	h.Count = zc
	for _, c := range pos {
		h.Count += c
	}
	for _, c := range neg {
		h.Count += c
	}
	return h
}

const (
	unknown = histogram.UnknownCounterReset
	reset   = histogram.CounterReset
	gauge   = histogram.GaugeType
)

var defaultZT = math.Ldexp(1, -128)

func cases() []goldenCase {
	var out []goldenCase
	add := func(name string, head bool, s ...sample) {
		out = append(out, goldenCase{name: name, samples: s, head: head})
	}
	I := func(t int64, h *histogram.Histogram) sample { return sample{t: t, h: h} }
	F := func(t int64, h *histogram.FloatHistogram) sample { return sample{t: t, fh: h} }

	// Fixed layout, default zero threshold, irregular timestamps (a negative start, jitter, a
	// one-hour gap, a 2^40 ms jump) and increments that reach every varbit bucket.
	ps, ns := sp(-2, 2, 1, 3), sp(0, 1)
	t0 := int64(-1_000_000)
	fixed := []struct {
		dt  int64
		zc  uint64
		pos []int64
		neg []int64
	}{
		{0, 1, []int64{1, 2, 3, 4, 5}, []int64{1}},
		{15000, 1, []int64{1, 2, 3, 4, 5}, []int64{1}},
		{15001, 2, []int64{2, 4, 3, 9, 5}, []int64{1}},
		{14998, 9, []int64{40, 4, 300, 9, 6}, []int64{2}},
		{15000, 90, []int64{400, 4, 3000, 90, 6}, []int64{2}},
		{3_600_000, 900, []int64{40000, 5000, 300000, 90, 7}, []int64{3}},
		{15000, 900, []int64{40000, 5000, 30_000_000, 90, 7}, []int64{3}},
		{1 << 40, 901, []int64{40000, 5000, 30_000_000, 1 << 40, 7}, []int64{3}},
		{15000, 1 << 58, []int64{40000, 5000, 30_000_000, 1 << 40, 1 << 59}, []int64{3}},
		{15000, 1 << 58, []int64{40000, 5000, 30_000_000, 1 << 40, 1 << 59}, []int64{3}},
	}
	var s []sample
	t := t0
	sum := 0.0
	for i, f := range fixed {
		t += f.dt
		sum += float64(i) * 1.25
		s = append(s, I(t, ih(unknown, 3, defaultZT, f.zc, sum, ps, f.pos, ns, f.neg)))
	}
	add("int_fixed_layout", false, s...)

	// New buckets appear: before, after and between the existing ones, and on the negative
	// side; each recodes the chunk. Zero threshold 0.
	add("int_new_buckets_recode", false,
		I(1000, ih(unknown, 0, 0, 0, 1, sp(0, 2), []int64{1, 1}, nil, nil)),
		I(2000, ih(unknown, 0, 0, 0, 2, sp(0, 2), []int64{2, 1}, nil, nil)),
		I(3000, ih(unknown, 0, 0, 1, 3, sp(0, 2), []int64{2, 3}, nil, nil)),
		I(4000, ih(unknown, 0, 0, 1, 5, sp(-1, 3, 2, 1), []int64{1, 2, 3, 1}, nil, nil)),
		I(5000, ih(unknown, 0, 0, 1, 8, sp(-1, 3, 2, 1), []int64{1, 3, 3, 2}, nil, nil)),
		I(6000, ih(unknown, 0, 0, 1, 9, sp(-1, 3, 2, 1), []int64{1, 3, 4, 2}, sp(2, 1), []int64{1})),
		I(7000, ih(unknown, 0, 0, 2, 12, sp(-1, 5, 0, 1), []int64{1, 3, 4, 1, 0, 2}, sp(2, 1), []int64{1})),
		I(8000, ih(unknown, 0, 0, 2, 12, sp(-1, 6), []int64{1, 3, 4, 1, 0, 3}, sp(0, 1, 1, 1), []int64{1, 1})),
	)

	// Counter resets: the count goes down; a bucket goes down while the count goes up; the
	// zero count goes down; an explicit reset hint. Each starts a chunk with header 10.
	// Then a schema change and a zero-threshold change start chunks with header 00.
	add("int_counter_resets", false,
		I(0, ih(unknown, 2, 0.5, 3, 10, sp(0, 3), []int64{5, 6, 7}, nil, nil)),
		I(10, ih(unknown, 2, 0.5, 4, 11, sp(0, 3), []int64{6, 6, 9}, nil, nil)),
		I(20, ih(unknown, 2, 0.5, 0, 1, sp(0, 3), []int64{1, 0, 0}, nil, nil)),
		I(30, ih(unknown, 2, 0.5, 0, 2, sp(0, 3), []int64{2, 0, 1}, nil, nil)),
		I(40, ih(unknown, 2, 0.5, 5, 3, sp(0, 3), []int64{1, 0, 3}, nil, nil)),
		I(50, ih(unknown, 2, 0.5, 4, 4, sp(0, 3), []int64{1, 5, 3}, nil, nil)),
		I(60, ih(reset, 2, 0.5, 4, 5, sp(0, 3), []int64{1, 5, 4}, nil, nil)),
		I(70, ih(unknown, 1, 0.5, 4, 5, sp(0, 2), []int64{6, 4}, nil, nil)),
		I(80, ih(unknown, 1, 0.25, 4, 5, sp(0, 2), []int64{6, 5}, nil, nil)),
		I(90, ih(unknown, 1, 0.25, 5, 6, sp(0, 2), []int64{6, 6}, nil, nil)),
	)

	// A gauge histogram: counts go down and up, buckets (also non-empty ones) come and go,
	// an arbitrary zero threshold (9 bytes).
	add("int_gauge", false,
		I(100, ih(gauge, -4, 0.001, 2, -5, sp(0, 2), []int64{3, 4}, sp(1, 1), []int64{2})),
		I(200, ih(gauge, -4, 0.001, 1, -7, sp(0, 2), []int64{1, 4}, sp(1, 1), []int64{1})),
		I(300, ih(gauge, -4, 0.001, 1, -1, sp(1, 2), []int64{4, 4}, nil, nil)),
		I(400, ih(gauge, -4, 0.001, 7, 2, sp(0, 1, 2, 1), []int64{2, 9}, sp(0, 1), []int64{3})),
		I(500, ih(gauge, -4, 0.001, 0, 0, nil, nil, nil, nil)),
		I(600, ih(gauge, -3, 0.001, 1, 1, sp(0, 1), []int64{1}, nil, nil)),
	)

	// Staleness markers: after one, only markers fit the chunk; the next real sample starts a
	// chunk (header 00), as does a marker's first real successor.
	stale := &histogram.Histogram{Sum: math.Float64frombits(value.StaleNaN)}
	add("int_stale", false,
		I(1000, ih(unknown, 8, 1, 1, 1, sp(10, 1), []int64{1}, nil, nil)),
		I(2000, ih(unknown, 8, 1, 1, 2, sp(10, 1), []int64{2}, nil, nil)),
		I(3000, stale.Copy()),
		I(4000, stale.Copy()),
		I(5000, ih(unknown, 8, 1, 0, 1, sp(10, 1), []int64{1}, nil, nil)),
		I(6000, stale.Copy()),
	)

	// More than 120 samples: compaction cuts with an unknown header, the head with 01.
	var long []sample
	for i := int64(0); i < 130; i++ {
		long = append(long, I(i*15000, ih(unknown, 3, defaultZT, uint64(i), float64(i)/3, sp(0, 2), []int64{i, 2 * i}, nil, nil)))
	}
	add("int_cut_120", true, long...)

	// Float histograms.
	fixedF := []sample{}
	for i := 0; i < 10; i++ {
		x := float64(i)
		fixedF = append(fixedF, F(int64(i)*60000+int64(i%3), fhist(unknown, 1, 1, x*0.5, x*x/7,
			sp(0, 2, 3, 1), []float64{x, x * 1.5, x * x}, sp(-1, 1), []float64{0.25 * x})))
	}
	add("float_fixed_layout", false, fixedF...)

	add("float_new_buckets_recode", false,
		F(0, fhist(unknown, 0, defaultZT, 0, 1, sp(0, 1), []float64{1}, nil, nil)),
		F(10, fhist(unknown, 0, defaultZT, 0.5, 2, sp(0, 1), []float64{1.5}, nil, nil)),
		F(20, fhist(unknown, 0, defaultZT, 0.5, 3, sp(-3, 1, 2, 1, 0, 1), []float64{0.1, 1.5, 2}, nil, nil)),
		F(30, fhist(unknown, 0, defaultZT, 0.5, 4, sp(-3, 1, 2, 2), []float64{0.1, 1.75, 2}, sp(0, 2), []float64{1, 1})),
		F(40, fhist(unknown, 0, defaultZT, 0.75, 5, sp(-3, 5), []float64{0.1, 0.3, 0.5, 1.75, 3}, sp(0, 2), []float64{1, 2})),
	)

	add("float_counter_resets", false,
		F(0, fhist(unknown, -4, 2, 1, 10, sp(0, 2), []float64{2, 3}, nil, nil)),
		F(1, fhist(unknown, -4, 2, 1, 11, sp(0, 2), []float64{2.5, 3}, nil, nil)),
		F(2, fhist(unknown, -4, 2, 0, 0.5, sp(0, 2), []float64{0.5, 0}, nil, nil)),
		F(3, fhist(unknown, -4, 2, 0, 0.75, sp(0, 2), []float64{0.75, 0}, nil, nil)),
		F(4, fhist(unknown, -4, 2, 3, 1, sp(0, 2), []float64{0.25, 5}, nil, nil)),
		F(5, fhist(unknown, 5, 2, 3, 1, sp(0, 2), []float64{0.25, 5}, nil, nil)),
		F(6, fhist(reset, 5, 2, 3, 2, sp(0, 2), []float64{0.25, 6}, nil, nil)),
	)

	add("float_gauge", false,
		F(5, fhist(gauge, 2, 0, 1, -1.5, sp(3, 2), []float64{0.5, 4}, nil, nil)),
		F(6, fhist(gauge, 2, 0, 0.5, -2, sp(3, 1), []float64{0.25}, nil, nil)),
		F(7, fhist(gauge, 2, 0, 0.5, 7, sp(2, 3), []float64{1, 2, 3}, sp(0, 1), []float64{9})),
		F(8, fhist(gauge, 2, 0, 2, 8, sp(4, 1), []float64{1}, sp(0, 1), []float64{8})),
		F(9, fhist(gauge, 2, 0, 2, 8, sp(4, 1), []float64{1}, sp(0, 1), []float64{8})),
	)

	staleF := &histogram.FloatHistogram{Sum: math.Float64frombits(value.StaleNaN)}
	add("float_stale", false,
		F(1000, fhist(unknown, 3, 0.001, 1, 1.5, sp(0, 1), []float64{1}, nil, nil)),
		F(2000, staleF.Copy()),
		F(3000, fhist(unknown, 3, 0.001, 1, 2.5, sp(0, 1), []float64{2}, nil, nil)),
	)
	return out
}

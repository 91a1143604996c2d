// Harness writing ../thanos_histograms.json: Thanos' histogram downsampling functions
// (extracted from pkg/compact/downsample by gen.sh into thanos.go, next to this file) on
// Prometheus v0.309.1's model/histogram and tsdb/chunkenc (the version Thanos pins). It is
// not run in CI; gen.sh documents how to run it.
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

type jchunk struct {
	MinTime  int64  `json:"min_time"`
	MaxTime  int64  `json:"max_time"`
	Encoding uint8  `json:"encoding"`
	Data     string `json:"data"`
}

type jcase struct {
	Name string   `json:"name"`
	Raw  []jchunk `json:"raw"`
	M5   []jchunk `json:"m5"`
	H1   []jchunk `json:"h1"`
}

func toJ(ms []chunksMeta) []jchunk {
	var out []jchunk
	for _, m := range ms {
		out = append(out, jchunk{m.MinTime, m.MaxTime, uint8(m.Chunk.Encoding()), hex.EncodeToString(m.Chunk.Bytes())})
	}
	return out
}

type hs struct {
	t  int64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// rawChunks appends samples as the head does, cutting at 120 samples and when the appender asks.
func rawChunks(samples []hs) []chunksMeta {
	var out []chunksMeta
	var chk chunkenc.Chunk
	var app chunkenc.Appender
	n := 0
	newChunk := func(float bool) {
		if float {
			chk = chunkenc.NewFloatHistogramChunk()
		} else {
			chk = chunkenc.NewHistogramChunk()
		}
		app, _ = chk.Appender()
		out = append(out, chunksMeta{Chunk: chk})
		n = 0
	}
	for i, s := range samples {
		float := s.fh != nil
		if i == 0 || n >= 120 {
			newChunk(float)
		}
		var c chunkenc.Chunk
		var err error
		if float {
			c, _, app, err = app.AppendFloatHistogram(nil, s.t, s.fh, false)
		} else {
			c, _, app, err = app.AppendHistogram(nil, s.t, s.h, false)
		}
		if err != nil {
			panic(err)
		}
		if c != nil {
			chk = c
			// recode keeps the samples; a new chunk holds just this one.
			if c.NumSamples() == 1 {
				out = append(out, chunksMeta{Chunk: c})
				n = 0
			} else {
				out[len(out)-1].Chunk = c
			}
		}
		last := &out[len(out)-1]
		if last.Chunk.NumSamples() == 1 {
			last.MinTime = s.t
		}
		last.MaxTime = s.t
		n++
	}
	return out
}

func expandRaw(chks []chunksMeta) []sample {
	var all []sample
	for _, c := range chks {
		var err error
		if c.Chunk.Encoding() == chunkenc.EncHistogram {
			err = expandHistogramChunkIterator(c.Chunk.Iterator(nil), &all)
		} else {
			err = expandFloatHistogramChunkIterator(c.Chunk.Iterator(nil), &all)
		}
		if err != nil {
			panic(err)
		}
	}
	return all
}

func downsampleRawH(data []sample, resolution int64) []chunksMeta {
	if len(data) == 0 {
		return nil
	}
	mint, maxt := data[0].t, data[len(data)-1].t
	numChunks := targetChunkCount(mint, maxt, 1*60*1000, resolution, len(data))
	chks := make([]chunksMeta, 0, numChunks)
	downsampleRawLoop(data, resolution, numChunks, &chks, downsampleHistogramBatch)
	return chks
}

func downsampleAggrH(in []chunksMeta, inRes, outRes int64) []chunksMeta {
	var chks []*AggrChunk
	num := 0
	for _, c := range in {
		ac := c.Chunk.(*AggrChunk)
		chks = append(chks, ac)
		num += ac.NumSamples()
	}
	numChunks := targetChunkCount(in[0].MinTime, in[len(in)-1].MaxTime, inRes, outRes, num)
	var buf []sample
	res, err := downsampleAggrLoop(chks, &buf, outRes, numChunks, downsampleHistogramAggrBatch)
	if err != nil {
		panic(err)
	}
	return res
}

func run(name string, samples []hs) jcase {
	raw := rawChunks(samples)
	m5 := downsampleRawH(expandRaw(raw), 300000)
	h1 := downsampleAggrH(m5, 300000, 3600000)
	return jcase{name, toJ(raw), toJ(m5), toJ(h1)}
}

func genFloat(i int64) *histogram.FloatHistogram {
	return &histogram.FloatHistogram{
		Count:           12 + float64(i*9),
		ZeroCount:       2 + float64(i),
		ZeroThreshold:   0.001,
		Sum:             18.4 * float64(i+1),
		Schema:          1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []float64{float64(i + 1), float64(i + 2), float64(i + 1), float64(i + 1)},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		NegativeBuckets: []float64{float64(i + 1), float64(i + 2), float64(i + 1), float64(i + 1)},
	}
}

func floatSeries(start, step int64, ns ...int) []hs {
	var out []hs
	t := start
	for _, n := range ns {
		for i := 0; i < n; i++ {
			h := genFloat(int64(i))
			if i > 0 {
				h.CounterResetHint = histogram.NotCounterReset
			}
			out = append(out, hs{t: t, fh: h})
			t += step
		}
	}
	return out
}

// customSeries: Prometheus' GenerateTestCustomBucketsFloatHistograms, restarted every
// `run` samples (a counter reset).
func customSeries(step int64, n, run int) []hs {
	var out []hs
	for x := 0; x < n; x++ {
		i := float64(x % run)
		h := &histogram.FloatHistogram{
			Count:           5 + i*4,
			Sum:             18.4 * (i + 1),
			Schema:          histogram.CustomBucketsSchema,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
			PositiveBuckets: []float64{i + 1, i + 2, i + 1, i + 1},
			CustomValues:    []float64{0, 1, 2, 3, 4},
		}
		out = append(out, hs{t: int64(x) * step, fh: h})
	}
	return out
}

func gaugeSeries(start, step int64, n int) []hs {
	var out []hs
	for x := 0; x < n; x++ {
		i := int64(math.Sin(float64(x))*100) + 100
		h := genFloat(i)
		h.CounterResetHint = histogram.GaugeType
		out = append(out, hs{t: start + int64(x)*step, fh: h})
	}
	return out
}

// lcg is a small deterministic generator, reimplemented in the Rust test.
type lcg struct{ s uint64 }

func (l *lcg) next() uint64 {
	l.s = l.s*6364136223846793005 + 1442695040888963407
	return l.s >> 33
}

// intSeries: integer counter histograms, schema 3 then 2 (a schema change mid-chunk), new
// buckets, occasional resets, a zero threshold that grows once, negative buckets.
func intSeries(n int, seed uint64) []hs {
	r := &lcg{seed}
	schema := int32(3)
	zt := 2.938735877055719e-39
	pos := map[int32]uint64{}
	neg := map[int32]uint64{}
	var zc, count uint64
	sum := 0.0
	var out []hs
	for i := 0; i < n; i++ {
		if i == n/2 {
			schema = 2
			np := map[int32]uint64{}
			for k, v := range pos {
				np[((k-1)>>1)+1] += v
			}
			pos = np
			nn := map[int32]uint64{}
			for k, v := range neg {
				nn[((k-1)>>1)+1] += v
			}
			neg = nn
		}
		if i == n/3 {
			zt = 0.001
		}
		if i > 0 && r.next()%97 == 0 {
			pos, neg, zc, count, sum = map[int32]uint64{}, map[int32]uint64{}, 0, 0, 0
		}
		obs := int(r.next() % 6)
		for o := 0; o < obs; o++ {
			k := int32(r.next()%12) - 3
			if r.next()%50 == 0 {
				k += 20
			}
			switch r.next() % 5 {
			case 0:
				neg[k]++
			case 1:
				zc++
			default:
				pos[k]++
			}
			count++
			sum += float64(k) * 0.25
		}
		h := &histogram.Histogram{Schema: schema, ZeroThreshold: zt, ZeroCount: zc, Count: count, Sum: sum}
		h.PositiveSpans, h.PositiveBuckets = spans(pos)
		h.NegativeSpans, h.NegativeBuckets = spans(neg)
		out = append(out, hs{t: int64(i) * 60000, h: h})
	}
	return out
}

func spans(m map[int32]uint64) ([]histogram.Span, []int64) {
	var keys []int32
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	var sp []histogram.Span
	var b []int64
	var prev int64
	last := int32(0)
	for i, k := range keys {
		if i == 0 {
			sp = append(sp, histogram.Span{Offset: k, Length: 1})
		} else if k == last+1 {
			sp[len(sp)-1].Length++
		} else {
			sp = append(sp, histogram.Span{Offset: k - last - 1, Length: 1})
		}
		last = k
		v := int64(m[k])
		b = append(b, v-prev)
		prev = v
	}
	return sp, b
}

func main() {
	cases := []jcase{
		run("thanos_counter_resets_15_5_10", floatSeries(0, 30000, 15, 5, 10)),
		run("thanos_360_samples", floatSeries(0, 30000, 360)),
		run("thanos_gauge_30", gaugeSeries(0, 30000, 30)),
		run("thanos_11_samples", floatSeries(0, 30000, 11)),
		run("int_counter_schema_change", intSeries(2000, 42)),
		run("gauge_long", gaugeSeries(0, 60000, 1500)),
		run("custom_buckets_counter", customSeries(30000, 700, 170)),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(cases); err != nil {
		panic(err)
	}
}

func (c AggrChunk) Appender() (chunkenc.Appender, error) { return nil, errors.New("no") }
func (c AggrChunk) Iterator(_ chunkenc.Iterator) chunkenc.Iterator {
	return chunkenc.NewNopIterator()
}
func (c AggrChunk) Compact() {}
func (c AggrChunk) Reset([]byte) {}

func min[T int | int64](a, b T) T {
	if a < b {
		return a
	}
	return b
}

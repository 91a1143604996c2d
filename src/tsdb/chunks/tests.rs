//! Tests of the chunk segment writer and reader: round trips, Prometheus' segment cut rule,
//! and errors that name the damaged file and offset.

use super::*;

/// Writes `series` (each a list of chunk data, XOR-encoded) and returns the refs.
fn write(dir: &Path, segment_size: u64, series: &[Vec<Vec<u8>>]) -> Vec<Vec<ChunkRef>> {
    let mut w = SegmentWriter::create(dir, segment_size).expect("create");
    let mut all = Vec::new();
    for chunks in series {
        let chunks: Vec<(u8, &[u8])> = chunks
            .iter()
            .map(|d| (ENCODING_XOR, d.as_slice()))
            .collect();
        let mut refs = Vec::new();
        w.write_series_chunks(&chunks, &mut refs).expect("write");
        assert_eq!(refs.len(), chunks.len());
        all.push(refs);
    }
    let total = w.total_bytes();
    let files = w.finish().expect("finish");
    assert_eq!(files.iter().map(|f| f.1).sum::<u64>(), total);
    for (name, size) in &files {
        let on_disk = std::fs::metadata(dir.parent().expect("parent").join(name));
        assert_eq!(on_disk.expect("segment exists").len(), *size);
    }
    all
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn err_string(r: Result<(u8, &[u8])>) -> String {
    r.expect_err("must fail").to_string()
}

#[test]
fn round_trip_across_small_segments() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chunks");
    let series: Vec<Vec<Vec<u8>>> = (0..60u8)
        .map(|s| {
            (0..(s % 5))
                .map(|c| data(usize::from(s) * 7 + usize::from(c) * 50, s))
                .collect()
        })
        .collect();
    let refs = write(&dir, 1000, &series);
    let mut r = SegmentReader::open_with_window(&dir, 64).expect("open");
    assert!(r.segment_count() > 5, "{} segments", r.segment_count());
    assert_eq!(r.segment_paths().count(), r.segment_count());
    let flat: Vec<ChunkRef> = refs.iter().flatten().copied().collect();
    assert!(flat.windows(2).all(|w| w[0] < w[1]), "refs increase");
    for (chunks, refs) in series.iter().zip(&refs) {
        for (d, &cr) in chunks.iter().zip(refs) {
            assert_eq!(r.chunk(cr).expect("read"), (ENCODING_XOR, d.as_slice()));
        }
    }
}

#[test]
fn no_chunks_leave_an_empty_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chunks");
    let mut w = SegmentWriter::create(&dir, 0).expect("create");
    w.write_series_chunks(&[], &mut Vec::new()).expect("no-op");
    assert!(w.finish().expect("finish").is_empty());
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
    assert_eq!(SegmentReader::open(&dir).expect("open").segment_count(), 0);
    assert!(
        SegmentWriter::create(&dir, 0).is_ok(),
        "an empty dir can be reused"
    );
}

#[test]
fn cut_batches_within_one_series() {
    // Estimated record = 5 + 1 + 100 + 4 = 110. A fresh segment holds 8 + 2 × 110.
    let mut cuts = Vec::new();
    plan_cuts([100; 5].into_iter(), 0, 300, &mut cuts);
    assert_eq!(cuts, [2, 4]);
    plan_cuts([100; 5].into_iter(), SEGMENT_HEADER_BYTES, 300, &mut cuts);
    assert_eq!(cuts, [2, 4]);
    // A chunk larger than a segment still gets one, and never an empty one before it.
    plan_cuts([500].into_iter(), 0, 100, &mut cuts);
    assert!(cuts.is_empty());
    plan_cuts([500, 500].into_iter(), 0, 100, &mut cuts);
    assert_eq!(cuts, [1]);
}

#[test]
fn first_batch_counts_bytes_already_in_the_segment() {
    // 415 bytes in the segment: 415 + 310 fits 1000, 415 + 620 does not; later batches
    // are measured against an empty segment (8 + 620 fits).
    let mut cuts = Vec::new();
    plan_cuts([300, 300, 300].into_iter(), 415, 1000, &mut cuts);
    assert_eq!(cuts, [1]);
    // The whole series moves to a new segment when its first chunk does not fit.
    plan_cuts([700, 10].into_iter(), 415, 1000, &mut cuts);
    assert_eq!(cuts, [0]);
    // Only the 5-byte estimate overflows: 415 + 5 + 1 + 576 + 4 = 1001 > 1000, even though
    // the real record (2 + 1 + 576 + 4 = 583) would end at 998.
    plan_cuts([576].into_iter(), 415, 1000, &mut cuts);
    assert_eq!(cuts, [0]);
}

#[test]
fn writer_cuts_segments_like_go() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chunks");
    let series = vec![
        vec![data(400, 1)],
        vec![data(300, 2), data(300, 3), data(300, 4)],
    ];
    let refs = write(&dir, 1000, &series);
    // Series 0 ends at 8 + 2 + 1 + 400 + 4 = 415. Series 1: chunk 0 fits behind it
    // (415 + 310 ≤ 1000), chunks 1 and 2 go to a new segment (8 + 620 ≤ 1000).
    assert_eq!(refs[0], [ChunkRef::new(0, 8)]);
    assert_eq!(
        refs[1],
        [
            ChunkRef::new(0, 415),
            ChunkRef::new(1, 8),
            ChunkRef::new(1, 315)
        ]
    );
    let names: Vec<_> = SegmentReader::open(&dir)
        .expect("open")
        .segment_paths()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["000001", "000002"]);
    let first = std::fs::read(dir.join("000001")).expect("read");
    assert_eq!(first[..8], [0x85, 0xbd, 0x40, 0xdd, 1, 0, 0, 0]);
    assert_eq!(first.len(), 415 + 2 + 1 + 300 + 4);
}

fn one_chunk_block() -> (tempfile::TempDir, PathBuf, ChunkRef) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chunks");
    let refs = write(&dir, 0, &[vec![data(20, 9), data(30, 7)]]);
    (tmp, dir, refs[0][1])
}

fn patch(path: &Path, at: usize, byte: u8) {
    let mut b = std::fs::read(path).expect("read");
    b[at] = byte;
    std::fs::write(path, b).expect("write");
}

#[test]
fn bad_header_names_file_and_offset() {
    let (_tmp, dir, _) = one_chunk_block();
    let seg = dir.join("000001");
    patch(&seg, 1, 0);
    let err = SegmentReader::open(&dir)
        .err()
        .expect("bad magic")
        .to_string();
    assert!(
        err.contains("000001") && err.contains("offset 0") && err.contains("magic"),
        "{err}"
    );
    patch(&seg, 1, 0xbd);
    patch(&seg, 4, 2);
    let err = SegmentReader::open(&dir)
        .err()
        .expect("bad version")
        .to_string();
    assert!(
        err.contains("000001") && err.contains("offset 4") && err.contains("version"),
        "{err}"
    );
    std::fs::write(&seg, [0x85, 0xbd]).expect("write");
    let err = SegmentReader::open(&dir).err().expect("short").to_string();
    assert!(err.contains("000001") && err.contains("offset 0"), "{err}");
}

#[test]
fn crc_mismatch_names_file_and_offset() {
    let (_tmp, dir, cr) = one_chunk_block();
    patch(&dir.join("000001"), cr.offset() as usize + 5, 0xee);
    let mut r = SegmentReader::open(&dir).expect("open");
    let err = err_string(r.chunk(cr));
    assert!(
        err.contains("000001") && err.contains(&format!("offset {}", cr.offset())),
        "{err}"
    );
    assert!(err.contains("CRC"), "{err}");
}

#[test]
fn truncated_or_missing_data_names_file_and_offset() {
    let (_tmp, dir, cr) = one_chunk_block();
    let seg = dir.join("000001");
    let len = std::fs::metadata(&seg).expect("meta").len();
    std::fs::File::options()
        .write(true)
        .open(&seg)
        .and_then(|f| f.set_len(len - 3))
        .expect("truncate");
    let mut r = SegmentReader::open(&dir).expect("open");
    let at = format!("offset {}", cr.offset());
    let err = err_string(r.chunk(cr));
    assert!(
        err.contains("000001") && err.contains(&at) && err.contains("past the end"),
        "{err}"
    );
    let err = err_string(r.chunk(ChunkRef::new(0, 5000)));
    assert!(
        err.contains("000001") && err.contains("offset 5000"),
        "{err}"
    );
    let err = err_string(r.chunk(ChunkRef::new(0, 3)));
    assert!(err.contains("000001") && err.contains("offset 3"), "{err}");
    let err = err_string(r.chunk(ChunkRef::new(4, 8)));
    assert!(
        err.contains("000005") && err.contains("offset 8") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn segment_names_must_be_contiguous() {
    let (_tmp, dir, _) = one_chunk_block();
    std::fs::copy(dir.join("000001"), dir.join("000003")).expect("copy");
    std::fs::write(dir.join("000001.tmp"), b"ignored").expect("write");
    let err = SegmentReader::open(&dir).err().expect("gap").to_string();
    assert!(
        err.contains("chunks") && err.contains("000002") && err.contains("000003"),
        "{err}"
    );
    std::fs::rename(dir.join("000003"), dir.join("2")).expect("rename");
    let err = SegmentReader::open(&dir)
        .err()
        .expect("bad name")
        .to_string();
    assert!(err.contains("000002"), "{err}");
    let err = SegmentWriter::create(&dir, 0)
        .err()
        .expect("not empty")
        .to_string();
    assert!(err.contains("already holds"), "{err}");
}

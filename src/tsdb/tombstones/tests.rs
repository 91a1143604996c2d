use super::*;

#[test]
fn empty_file_is_the_nine_known_bytes() {
    let bytes = Tombstones::default().encode();
    assert_eq!(
        bytes,
        [0x01, 0x30, 0xba, 0x30, 0x01, 0x00, 0x00, 0x00, 0x00]
    );
    assert!(Tombstones::decode(&bytes, Path::new("t"))
        .unwrap()
        .is_empty());
}

#[test]
fn round_trip_merges_adjacent_intervals() {
    let mut t = Tombstones::default();
    t.add(
        34,
        Interval {
            min_time: 10,
            max_time: 20,
        },
    );
    t.add(
        34,
        Interval {
            min_time: 21,
            max_time: 30,
        },
    );
    t.add(
        34,
        Interval {
            min_time: 50,
            max_time: 60,
        },
    );
    t.add(
        40,
        Interval {
            min_time: -5,
            max_time: 5,
        },
    );
    assert_eq!(t.get(34).len(), 2);
    assert_eq!(t.num_intervals(), 3);
    let back = Tombstones::decode(&t.encode(), Path::new("t")).unwrap();
    assert_eq!(back, t);
    assert!(back.get(34)[0].contains(25));
    assert!(back.get(99).is_empty());
}

#[test]
fn corruption_is_reported_with_offsets() {
    let mut t = Tombstones::default();
    t.add(
        1,
        Interval {
            min_time: 1,
            max_time: 2,
        },
    );
    let mut bytes = t.encode();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    let err = Tombstones::decode(&bytes, Path::new("blk/tombstones"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blk/tombstones") && err.contains("CRC32C"),
        "{err}"
    );
    let err = Tombstones::decode(&[0, 0, 0, 0, 1, 0, 0, 0, 0], Path::new("x")).unwrap_err();
    assert!(err.to_string().contains("bad magic"));
    let err = Tombstones::decode(&[1, 2], Path::new("x")).unwrap_err();
    assert!(err.to_string().contains("too short"));
}
/// Regression (hardening audit): decoding merged the list of a series on every entry,
/// quadratic in the intervals of one series; many unsorted, overlapping intervals of one
/// series now decode in one merge, to what adding them one by one gives.
#[test]
fn many_intervals_of_one_series_decode_merged() {
    let mut e = Encbuf::new();
    e.put_be32(TOMBSTONES_MAGIC);
    e.put_u8(TOMBSTONES_VERSION);
    // Descending starts 10 apart: [m, m + 4] for even i, [m, m + 9] for odd i, so each odd
    // interval touches the even one before it and the pair merges to [m, m + 14].
    let mut expected = Vec::new();
    for i in 0..20_000i64 {
        let min_time = (20_000 - i) * 10;
        e.put_uvarint(7);
        e.put_varint(min_time);
        e.put_varint(min_time + 4 + 5 * (i % 2));
        if i % 2 == 1 {
            expected.push(Interval {
                min_time,
                max_time: min_time + 14,
            });
        }
    }
    e.put_crc_since(HEADER_LEN);
    let t = Tombstones::decode(&e.buf, Path::new("t")).unwrap();
    expected.reverse();
    assert_eq!(t.get(7), expected.as_slice());
    assert_eq!(t.num_intervals(), 10_000);
}

use super::*;

fn spans(pairs: &[(i32, u32)]) -> Vec<Span> {
    pairs.iter().map(|&(o, l)| Span::new(o, l)).collect()
}

#[test]
fn bucket_indices_follow_offsets_and_skip_empty_spans() {
    let s = spans(&[(-2, 2), (0, 0), (3, 1), (0, 2)]);
    let got: Vec<i64> = BucketIndices::new(&s).collect();
    assert_eq!(got, vec![-2, -1, 3, 4, 5]);
    assert_eq!(BucketIndices::new(&[]).count(), 0);
    assert_eq!(BucketIndices::new(&spans(&[(5, 0)])).count(), 0);
}

// The example of Go's `expandIntSpansAndBuckets` doc comment.
#[test]
fn go_doc_example() {
    let a = spans(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
    let b = spans(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    let a_counts = [6i64, 3, 3, 2, 4, 5, 1];
    let b_counts = [6i64, 3, 0, 3, 0, 0, 2, 4, 5, 0, 1];
    let (fwd, bwd) = expand_spans_and_buckets(&a, &b, &a_counts, &b_counts).unwrap();
    assert!(bwd.is_empty());
    let want = [(2, 1, 2), (3, 2, 6), (6, 1, 14)].map(|(pos, num, bucket_index)| Insert {
        pos,
        num,
        bucket_index,
    });
    assert_eq!(fwd, want);
    // Deltas of a, widened: [6 -3 -3 3 -3 0 2 2 1 -5 1].
    let deltas = [6i64, -3, 0, -1, 2, 1, -4];
    assert_eq!(
        insert(&deltas, &fwd, true),
        vec![6, -3, -3, 3, -3, 0, 2, 2, 1, -5, 1]
    );
    assert_eq!(adjust_for_inserts(&a, &fwd), b);
}

#[test]
fn lost_or_shrinking_buckets_are_resets_unless_empty() {
    let a = spans(&[(0, 3)]);
    let b = spans(&[(0, 1), (1, 1)]);
    assert!(expand_spans_and_buckets(&a, &b, &[1i64, 2, 3], &[1, 3]).is_none());
    let (fwd, bwd) = expand_spans_and_buckets(&a, &b, &[1i64, 0, 3], &[1, 3]).unwrap();
    assert!(fwd.is_empty());
    assert_eq!(
        bwd,
        vec![Insert {
            pos: 1,
            num: 1,
            bucket_index: 1
        }]
    );
    assert!(expand_spans_and_buckets(&a, &a, &[1.0, 2.0, 3.0], &[1.0, 1.0, 3.0]).is_none());
    // Go compares with `>` and `== 0`: a NaN count never looks like a decrease, but a
    // vanished NaN bucket is not empty.
    let nan = [1.0, f64::NAN, 3.0];
    assert!(expand_spans_and_buckets(&a, &a, &nan, &[1.0, 2.0, 3.0]).is_some());
    assert!(expand_spans_and_buckets(&a, &b, &nan, &[1.0, 3.0]).is_none());
}

#[test]
fn both_ways_unions_the_layouts() {
    let a = spans(&[(0, 2), (5, 1)]);
    let b = spans(&[(1, 2), (10, 1)]);
    let (fwd, bwd, merged) = expand_spans_both_ways(&a, &b);
    assert_eq!(merged, spans(&[(0, 3), (4, 1), (5, 1)]));
    assert_eq!(
        fwd,
        vec![
            Insert {
                pos: 2,
                num: 1,
                bucket_index: 2
            },
            Insert {
                pos: 3,
                num: 1,
                bucket_index: 13
            }
        ]
    );
    assert_eq!(
        bwd,
        vec![
            Insert {
                pos: 0,
                num: 1,
                bucket_index: 0
            },
            Insert {
                pos: 2,
                num: 1,
                bucket_index: 7
            }
        ]
    );
    assert_eq!(
        insert(&[1.0, 2.0, 3.0], &fwd, false),
        vec![1.0, 2.0, 0.0, 3.0, 0.0]
    );
    assert_eq!(insert(&[5i64, 1], &bwd, true), vec![0, 5, 1, -6]);
}

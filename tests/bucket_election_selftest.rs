//! The start-up self-test of conditional writes (`compactd::election::selftest`) against a
//! real S3 server (SeaweedFS): concurrent creates give one winner, a stale If-Match is
//! refused, and the scratch object is gone afterwards.

mod common;

use std::sync::Arc;

use common::seaweed::Seaweed;
use compactd::election::selftest::check_conditional_writes;
use object_store::ObjectStoreExt;

#[test]
fn seaweedfs_passes_the_conditional_write_self_test() {
    let Some(s3) = Seaweed::start() else {
        return;
    };
    let bucket = common::open(&s3.objstore_yaml());
    let store = Arc::clone(&bucket.store);
    let scratch = "compactd/election/selftest-r1-7";
    common::runtime().block_on(async {
        check_conditional_writes(&store, scratch, 8)
            .await
            .expect("SeaweedFS honours If-None-Match and If-Match");
        let gone = store
            .head(&object_store::path::Path::from(scratch))
            .await
            .is_err();
        assert!(gone, "the scratch object is deleted");
    });
}

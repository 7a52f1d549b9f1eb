//! An etcd snapshot file from anyone: verify ends with Ok or a SnapshotError, never a
//! panic, an overflow or a stack overflow, whatever the pages claim.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lifeboat_etcd::snapshot::verify_bytes(data, true);
});

//! A backup tarball from anyone: validation ends with Ok or a clear ArchiveError, never a
//! panic, whatever the bytes (gzip, tar headers, paths, JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_engine::extract::{Limits, scan_validated};

fuzz_target!(|data: &[u8]| {
    let _ = scan_validated(data, Limits::default(), &mut |_| {});
});

//! Arbitrary bytes, whole and in arbitrary chunkings, with and without a size limit: every
//! invariant of `invariants.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| fastsse_fuzz::check_fuzz_input(input));

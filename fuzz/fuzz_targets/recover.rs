#![no_main]
//! See [`hark_fuzz::transcript_tail`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hark_fuzz::transcript_tail(hark_fuzz::fuzz_scratch_dir(), data);
});

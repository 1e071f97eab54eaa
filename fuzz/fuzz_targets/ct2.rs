#![no_main]
//! See [`hark_fuzz::ct2_model`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hark_fuzz::ct2_model(hark_fuzz::fuzz_scratch_dir(), data);
});

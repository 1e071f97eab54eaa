#![no_main]
//! See [`hark_fuzz::ggml_file`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hark_fuzz::ggml_file(hark_fuzz::fuzz_scratch_dir(), data);
});

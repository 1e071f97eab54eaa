#![no_main]
//! See [`hark_fuzz::tokenizer_json`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hark_fuzz::tokenizer_json(hark_fuzz::fuzz_scratch_dir(), data);
});

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshos_fuzz::signed_note::note(data));

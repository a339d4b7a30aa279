#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshos_fuzz::playbooks::yaml(data));

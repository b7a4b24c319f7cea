#![no_main]
// See mtp_core::fuzz_checks::photo_bytes for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtp_core::fuzz_checks::photo_bytes(data));

#![no_main]
// See mtp_core::fuzz_checks::deep_link for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mtp_core::fuzz_checks::deep_link(data));

//! config.json parsing, validation and what create derives from a valid spec (hezi_fuzz::config).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hezi_fuzz::config(data);
});

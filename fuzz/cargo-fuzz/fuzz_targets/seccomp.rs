//! linux.seccomp translation and compilation to BPF (hezi_fuzz::seccomp).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hezi_fuzz::seccomp(data);
});

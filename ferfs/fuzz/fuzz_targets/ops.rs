//! Random operation sequences on a fresh filesystem; the committed state
//! must always be fsck-clean.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferfs_tools::fuzzing::ops(data);
});

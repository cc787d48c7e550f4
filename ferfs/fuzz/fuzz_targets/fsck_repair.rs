//! fsck -y on an image (read-write mount, repairs, commit), then walk the result.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferfs_tools::fuzzing::fsck_repair(data);
});

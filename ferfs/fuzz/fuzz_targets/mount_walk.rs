//! Mount an image read-only and walk it: readdir, read every file, fsck.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferfs_tools::fuzzing::mount_walk(data);
});

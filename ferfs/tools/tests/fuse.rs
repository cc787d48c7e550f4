//! End-to-end test through FUSE. Ignored by default because it needs
//! /dev/fuse, the fusermount3 binary (Debian package fuse3) and usually
//! root; run it with `cargo test -p ferfs-tools --test fuse -- --ignored`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn wait_mounted(dir: &Path) -> bool {
    for _ in 0..100 {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        if mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
#[ignore = "needs /dev/fuse and fusermount3"]
fn mount_write_unmount_fsck() {
    let tmp = std::env::temp_dir().join(format!("ferfs-fuse-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let img = tmp.join("img");
    let mnt = tmp.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let bin = env!("CARGO_BIN_EXE_ferfs");
    let st = Command::new(bin)
        .args(["mkfs", "-q", "-s", "64M", "-z", "zstd"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(bin)
        .arg("mount")
        .arg(&img)
        .arg(&mnt)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_mounted(&mnt), "mount did not appear");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(mnt.join("f"), &data).unwrap();
    std::fs::create_dir(mnt.join("d")).unwrap();
    std::fs::hard_link(mnt.join("f"), mnt.join("d/g")).unwrap();
    std::os::unix::fs::symlink("f", mnt.join("s")).unwrap();
    std::fs::rename(mnt.join("d/g"), mnt.join("h")).unwrap();
    assert_eq!(std::fs::read(mnt.join("h")).unwrap(), data);
    assert_eq!(std::fs::metadata(mnt.join("f")).unwrap().nlink(), 2);
    assert_eq!(std::fs::read_link(mnt.join("s")).unwrap(), Path::new("f"));
    // An unlinked file stays readable while open.
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut t = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(mnt.join("tmp"))
            .unwrap();
        t.write_all(b"still here").unwrap();
        std::fs::remove_file(mnt.join("tmp")).unwrap();
        assert!(!mnt.join("tmp").exists());
        t.seek(SeekFrom::Start(0)).unwrap();
        let mut back = String::new();
        t.read_to_string(&mut back).unwrap();
        assert_eq!(back, "still here");
    }
    std::fs::File::open(mnt.join("f"))
        .unwrap()
        .sync_all()
        .unwrap();
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    let st = Command::new(bin)
        .args(["fsck", "-n"])
        .arg(&img)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let _ = std::fs::remove_dir_all(&tmp);
}

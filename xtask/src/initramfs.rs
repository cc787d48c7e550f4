//! The guest's userspace: an uncompressed `newc` initramfs with busybox-static, the lab's
//! guest scripts (`lab/guest/`), the kernel's modules and host programs the tests use
//! (fio), each copied with the shared libraries it loads.

use crate::kernel::Kernel;
use crate::util::{cmd, run_captured, stdout_of, Context, Error, Result, Stage};
use crate::Lab;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Host programs every guest gets, at the same path as on the host: fio; util-linux
/// `fallocate` (busybox's cannot punch holes: write-zeroes requests); stress-ng and dbench
/// for ferfs's FUSE mount; btrfs-progs for ferfs's compression comparison.
const HOST_PROGRAMS: &[&str] = &[
    "/usr/bin/fio",
    "/usr/bin/fallocate",
    "/usr/bin/stress-ng",
    "/usr/bin/dbench",
    "/usr/sbin/mkfs.btrfs",
    "/usr/bin/btrfs",
];

/// Data files the programs need, at the same path as on the host (dbench's load file).
const HOST_FILES: &[&str] = &["/usr/share/dbench/client.txt"];

/// Ferrite's own userspace tools: (cargo package, binary, path in the guest).
const FERRITE_TOOLS: &[(&str, &str, &str)] = &[
    ("ferfs-tools", "ferfs", "/usr/bin/ferfs"),
    ("ferfs-tools", "mkfs-ferfs", "/usr/sbin/mkfs.ferfs"),
    ("ferfs-tools", "fsck-ferfs", "/usr/sbin/fsck.ferfs"),
    (
        "landlock-probe",
        "landlock-probe",
        "/usr/bin/landlock-probe",
    ),
    ("insn-mark", "insn-mark", "/usr/bin/insn-mark"),
    ("vec-io", "vec-io", "/usr/bin/vec-io"),
];

/// Builds Ferrite's userspace tools (release) for the guest; returns (host path, guest path).
pub fn ferrite_tools(lab: &Lab) -> Result<Vec<(PathBuf, PathBuf)>> {
    let stage = Stage::begin("building Ferrite's userspace tools");
    let mut packages: Vec<&str> = FERRITE_TOOLS.iter().map(|t| t.0).collect();
    packages.dedup();
    let mut c = Command::new("cargo");
    c.current_dir(&lab.repo)
        .args(["build", "--release", "--quiet"]);
    for p in &packages {
        c.args(["--package", p]);
    }
    crate::util::run_logged(&mut c, &lab.log_path("userspace-tools.log"))?;
    stage.done(&packages.join(" "));
    Ok(FERRITE_TOOLS
        .iter()
        .map(|(_, bin, guest)| {
            (
                lab.repo.join("target/release").join(bin),
                PathBuf::from(guest),
            )
        })
        .collect())
}

/// Packs the guest's initramfs; `tools` are (host path, guest path) pairs copied in with
/// the libraries they load.
pub fn build(lab: &Lab, kernel: &Kernel, tools: &[(PathBuf, PathBuf)]) -> Result<PathBuf> {
    let stage = Stage::begin(format!("packing the {} initramfs", kernel.name));
    let root = lab.cache.join(format!("initramfs/{}", kernel.name));
    let _ = fs::remove_dir_all(&root);
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc", "mnt",
        "run",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    let busybox = Path::new("/bin/busybox");
    check_static(busybox)?;
    fs::copy(busybox, root.join("bin/busybox")).context(|| "copy busybox".to_owned())?;
    copy_dir(&lab.repo.join("lab/guest"), &root.join("ferrite"))?;
    let init = root.join("ferrite/init");
    fs::rename(&init, root.join("init")).context(|| "lab/guest/init is missing".to_owned())?;
    fs::set_permissions(root.join("init"), fs::Permissions::from_mode(0o755))?;
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(root.join("etc/group"), "root:x:0:\n")?;

    copy_dir(
        &kernel.modules,
        &root.join("lib/modules").join(&kernel.release),
    )?;

    // (host file, guest path): programs, then every library they load at its host path.
    let mut programs: Vec<(PathBuf, PathBuf)> = HOST_PROGRAMS
        .iter()
        .map(|p| (PathBuf::from(p), PathBuf::from(p)))
        .collect();
    programs.extend(tools.iter().cloned());
    let mut files = BTreeSet::new();
    for (host, guest) in &programs {
        if !host.is_file() {
            return Err(
                Error::new(format!("{} is missing on the host", host.display())).hint(
                    "run the command again: it installs lab/host-packages.txt and builds the tools",
                ),
            );
        }
        files.insert((host.clone(), guest.clone()));
        files.extend(shared_libraries(host)?.into_iter().map(|l| (l.clone(), l)));
    }
    for f in HOST_FILES {
        let path = PathBuf::from(f);
        if !path.is_file() {
            return Err(Error::new(format!("{f} is missing on the host"))
                .hint("run the command again: it installs lab/host-packages.txt"));
        }
        files.insert((path.clone(), path));
    }
    for (host, guest) in &files {
        let dest = root.join(guest.strip_prefix("/").unwrap_or(guest));
        fs::create_dir_all(dest.parent().unwrap_or(&root))?;
        // Libraries are copied by their real file, under the name the loader asks for.
        fs::copy(host, &dest).context(|| format!("copy {}", host.display()))?;
    }

    let cpio = lab.cache.join(format!("initramfs/{}.cpio", kernel.name));
    let mut pack = Command::new("sh");
    pack.current_dir(&root).arg("-c").arg(format!(
        "find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --quiet > '{}'",
        cpio.display()
    ));
    run_captured(&mut pack)?;
    let size = fs::metadata(&cpio)?.len();
    stage.done(&format!("{} MiB", size / (1 << 20)));
    Ok(cpio)
}

fn check_static(path: &Path) -> Result<()> {
    let out = stdout_of(cmd("file", &["-L"]).arg(path)).unwrap_or_default();
    if !path.is_file()
        || (!out.is_empty() && !out.contains("statically linked") && !out.contains("static-pie"))
    {
        return Err(
            Error::new(format!("{} is not a static busybox", path.display()))
                .hint("apt-get install busybox-static"),
        );
    }
    Ok(())
}

/// The shared libraries (and the loader) a program needs, from `ldd`.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(program).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let out = run_captured(cmd("cp", &["-a"]).arg(from).arg(to));
    out.map(|_| ()).map_err(|e| {
        Error::new(format!(
            "copy {} → {}: {}",
            from.display(),
            to.display(),
            e.what
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x2)\n\tlibgone.so => not found\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}

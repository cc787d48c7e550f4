//! Host set-up: Debian packages, the pinned Rust toolchain's `rust-src`, and bindgen.
//! Every step checks first and does nothing when the host already has what it needs.

use crate::util::{cmd, have_program, run_captured, run_logged, stdout_of, Error, Result, Stage};
use crate::Lab;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// bindgen version used for every build: the kernel needs at least 0.71.1.
pub const BINDGEN_VERSION: &str = "0.72.1";

/// The Debian suite that carries the kernel source and the fallback `rust-src`.
pub const BACKPORTS_SUITE: &str = "trixie-backports";

pub fn ensure_supported_host() -> Result<()> {
    if std::env::consts::ARCH != "x86_64" || std::env::consts::OS != "linux" {
        return Err(Error::new(format!(
            "unsupported host {}-{}: the lab builds and boots x86_64 Linux guests",
            std::env::consts::ARCH,
            std::env::consts::OS
        ))
        .hint("use an x86_64 Debian 12 (bookworm) machine"));
    }
    if !have_program("apt-get") || !have_program("dpkg-query") {
        return Err(Error::new("this host has no apt-get/dpkg-query")
            .hint("the lab installs its tools from Debian packages; use Debian 12 (bookworm)"));
    }
    Ok(())
}

/// Reads `lab/host-packages.txt`: one package a line, `#` comments.
pub fn required_packages(lab: &Lab) -> Result<Vec<String>> {
    let path = lab.repo.join("lab/host-packages.txt");
    let text = fs::read_to_string(&path)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", path.display())))?;
    Ok(parse_package_list(&text))
}

fn parse_package_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

/// A command run as root: directly when we are root, else through sudo.
pub fn as_root(program: &str) -> Result<Command> {
    if is_root() {
        return Ok(Command::new(program));
    }
    if !have_program("sudo") {
        return Err(Error::new(format!(
            "`{program}` must run as root and sudo is not installed"
        ))
        .hint("run the command as root, or install sudo"));
    }
    let mut c = Command::new("sudo");
    c.arg(program);
    Ok(c)
}

fn is_root() -> bool {
    stdout_of(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

pub fn ensure_packages(lab: &Lab) -> Result<()> {
    let wanted = required_packages(lab)?;
    let missing: Vec<&String> = wanted.iter().filter(|p| !is_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    let stage = Stage::begin(format!("installing Debian packages: {}", names.join(" ")));
    let log = lab.log_path("apt-install.log");
    let mut update = as_root("apt-get")?;
    update.args(["update", "-q"]);
    run_logged(&mut update, &log).map_err(|e| {
        Error::new(format!("apt-get update failed: {}", e.what))
            .hint("check that this machine reaches Debian's package archive")
    })?;
    let mut install = as_root("apt-get")?;
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&names);
    run_logged(&mut install, &log).map_err(|e| {
        Error::new(format!("installing {} failed: {}", names.join(" "), e.what)).hint(format!(
            "install them by hand: apt-get install {}",
            names.join(" ")
        ))
    })?;
    stage.done(&format!("{} packages", names.len()));
    Ok(())
}

/// The toolchain pinned in `rust-toolchain.toml`.
pub fn pinned_toolchain(lab: &Lab) -> Result<String> {
    let path = lab.repo.join("rust-toolchain.toml");
    let text = fs::read_to_string(&path)?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.split('"').nth(1))
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Error::new(format!("no `channel = \"…\"` in {}", path.display())))
}

/// Makes sure the pinned toolchain has its standard library source; returns a
/// `RUST_LIB_SRC` override when Debian's `rust-src` had to stand in for rustup's.
pub fn ensure_rust_src(lab: &Lab, toolchain: &str) -> Result<Option<PathBuf>> {
    let sysroot = stdout_of(&mut cmd(
        "rustc",
        &[format!("+{toolchain}"), "--print".into(), "sysroot".into()],
    ))
    .map_err(|e| {
        Error::new(format!(
            "the pinned Rust toolchain {toolchain} is not usable: {}",
            e.what
        ))
        .hint(format!("install it: rustup toolchain install {toolchain}"))
    })?;
    let library = PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust/library");
    if library.join("core/src/lib.rs").is_file() {
        return Ok(None);
    }
    let added = run_captured(&mut cmd(
        "rustup",
        &["component", "add", "rust-src", "--toolchain", toolchain],
    ));
    if added.is_ok() && library.join("core/src/lib.rs").is_file() {
        return Ok(None);
    }
    crate::util::warn("rustup could not add rust-src; falling back to Debian's rust-src package");
    debian_rust_src(lab, toolchain).map(Some)
}

fn debian_rust_src(lab: &Lab, toolchain: &str) -> Result<PathBuf> {
    let apt = crate::source::PrivateApt::new(lab)?;
    let root = lab.cache.join(format!("rust-src-{toolchain}"));
    let library = root.join(format!("usr/src/rustc-{toolchain}/library"));
    if library.join("core/src/lib.rs").is_file() {
        return Ok(library);
    }
    let versions = apt.versions("rust-src")?;
    let version = versions
        .iter()
        .find(|v| v.starts_with(&format!("{toolchain}+")))
        .ok_or_else(|| {
            Error::new(format!(
                "Debian's {BACKPORTS_SUITE} has no rust-src for Rust {toolchain}"
            ))
            .hint(format!(
                "run `rustup component add rust-src --toolchain {toolchain}`"
            ))
        })?;
    let deb = apt.download("rust-src", version)?;
    fs::create_dir_all(&root)?;
    run_captured(cmd("dpkg-deb", &["-x"]).arg(&deb).arg(&root))?;
    if !library.join("core/src/lib.rs").is_file() {
        return Err(Error::new(format!(
            "Debian's rust-src {version} has no {}",
            library.display()
        )));
    }
    Ok(library)
}

/// bindgen-cli, pinned, installed into the cache with `cargo install --locked`.
pub fn ensure_bindgen(lab: &Lab, toolchain: &str) -> Result<()> {
    let bin = lab.tools_bin().join("bindgen");
    if let Ok(v) = stdout_of(Command::new(&bin).arg("--version")) {
        if v.contains(BINDGEN_VERSION) {
            return Ok(());
        }
    }
    let stage = Stage::begin(format!("installing bindgen-cli {BINDGEN_VERSION}"));
    let log = lab.log_path("bindgen-install.log");
    let root = lab.cache.join("tools");
    let mut c = Command::new("cargo");
    c.arg(format!("+{toolchain}"))
        .args([
            "install",
            "--locked",
            "--quiet",
            "bindgen-cli",
            "--version",
            BINDGEN_VERSION,
            "--root",
        ])
        .arg(&root);
    run_logged(&mut c, &log).map_err(|e| {
        Error::new(format!(
            "cargo install bindgen-cli {BINDGEN_VERSION} failed: {}",
            e.what
        ))
        .hint("check that crates.io is reachable and libclang-19-dev is installed")
    })?;
    stage.done("");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_skips_comments_and_blanks() {
        let list = parse_package_list("# header\nclang-19\n\n fio  # for benchmarks\n");
        assert_eq!(list, vec!["clang-19".to_string(), "fio".to_string()]);
    }
}

//! The pristine kernel source: Debian's `linux-source-7.3`, fetched through a private apt
//! configuration (the machine's own apt set-up is never touched), checked against
//! `lab/kernel.lock`, and unpacked once into the cache.

use crate::host::BACKPORTS_SUITE;
use crate::util::{cmd, run_captured, sha256_file, stdout_of, warn, Context, Error, Result, Stage};
use crate::Lab;
use std::fs;
use std::path::{Path, PathBuf};

/// apt-get and apt-cache with their own sources list, lists and cache under the lab cache.
pub struct PrivateApt {
    dir: PathBuf,
}

impl PrivateApt {
    pub fn new(lab: &Lab) -> Result<Self> {
        let dir = lab.cache.join("apt");
        fs::create_dir_all(dir.join("lists/partial"))?;
        fs::create_dir_all(dir.join("cache/archives/partial"))?;
        fs::create_dir_all(dir.join("downloads"))?;
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        if !Path::new(keyring).is_file() {
            return Err(Error::new(format!("{keyring} is missing"))
                .hint("apt-get install debian-archive-keyring"));
        }
        crate::util::write_if_changed(
            &dir.join("sources.list"),
            format!(
                "deb [signed-by={keyring}] http://deb.debian.org/debian {BACKPORTS_SUITE} main\n"
            )
            .as_bytes(),
        )?;
        let apt = PrivateApt { dir };
        let lists_fresh = fs::read_dir(apt.dir.join("lists"))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"));
        if !lists_fresh {
            apt.update()?;
        }
        Ok(apt)
    }

    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            "-oDir::Etc::SourceParts=/dev/null".into(),
            format!("-oDir::State::Lists={d}/lists"),
            format!("-oDir::Cache={d}/cache"),
            "-oDir::State::status=/dev/null".into(),
            "-oAPT::Sandbox::User=root".into(),
            "-qq".into(),
        ]
    }

    pub fn update(&self) -> Result<()> {
        run_captured(cmd("apt-get", &self.options()).arg("update")).map_err(|e| {
            Error::new(format!(
                "cannot read Debian's {BACKPORTS_SUITE} package lists: {}",
                e.what
            ))
            .hint("check that this machine reaches Debian's package archive")
        })?;
        Ok(())
    }

    /// Every version of a package the archive offers, newest first.
    pub fn versions(&self, package: &str) -> Result<Vec<String>> {
        let out = stdout_of(cmd("apt-cache", &self.options()).args(["madison", package]))?;
        Ok(out
            .lines()
            .filter_map(|l| l.split('|').nth(1))
            .map(|v| v.trim().to_owned())
            .collect())
    }

    /// Downloads one version of a package; returns the `.deb`'s path.
    pub fn download(&self, package: &str, version: &str) -> Result<PathBuf> {
        let dest = self.dir.join("downloads");
        let mut c = cmd("apt-get", &self.options());
        c.current_dir(&dest)
            .arg("download")
            .arg(format!("{package}={version}"));
        run_captured(&mut c).map_err(|e| {
            Error::new(format!(
                "downloading {package} {version} failed: {}",
                e.what
            ))
            .hint("check that this machine reaches Debian's package archive")
        })?;
        let file_version = version.replace(':', "%3a");
        fs::read_dir(&dest)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with(&format!("{package}_{file_version}_")) && n.ends_with(".deb")
            })
            .ok_or_else(|| {
                Error::new(format!(
                    "apt-get download left no .deb for {package} {version}"
                ))
            })
    }
}

/// `lab/kernel.lock`.
pub struct KernelLock {
    pub package: String,
    pub version: String,
    pub deb_sha256: String,
    pub tarball: String,
    pub tarball_sha256: String,
}

impl KernelLock {
    pub fn load(lab: &Lab) -> Result<Self> {
        let path = lab.repo.join("lab/kernel.lock");
        let text = fs::read_to_string(&path).context(|| format!("read {}", path.display()))?;
        Self::parse(&text).map_err(|e| Error::new(format!("{}: {}", path.display(), e.what)))
    }

    fn parse(text: &str) -> Result<Self> {
        let get = |key: &str| -> Result<String> {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
                .ok_or_else(|| Error::new(format!("missing `{key} = …`")))
        };
        Ok(KernelLock {
            package: get("package")?,
            version: get("version")?,
            deb_sha256: get("deb_sha256")?,
            tarball: get("tarball")?,
            tarball_sha256: get("tarball_sha256")?,
        })
    }
}

/// The upstream release in a Debian version: `7.3.4-1~bpo13+1` → (7, 3, 4).
pub fn upstream_release(debian_version: &str) -> Option<(u32, u32, u32)> {
    let upstream = debian_version.split(['-', '~', '+']).next()?;
    let upstream = upstream.split(':').next_back()?;
    let mut parts = upstream.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// What to do with the version the archive offers, against the locked one.
#[derive(Debug, PartialEq)]
pub enum VersionVerdict {
    Locked,
    NewerPoint,
    Refused(String),
}

pub fn judge_version(locked: &str, offered: &str) -> VersionVerdict {
    if locked == offered {
        return VersionVerdict::Locked;
    }
    match (upstream_release(locked), upstream_release(offered)) {
        (Some((lm, ln, lp)), Some((om, on, op))) if (lm, ln) == (om, on) && op >= lp => {
            VersionVerdict::NewerPoint
        }
        (Some((lm, ln, _)), Some(o)) => VersionVerdict::Refused(format!(
            "the archive offers {offered} ({}.{}.{}), but Ferrite is built on Linux {lm}.{ln}",
            o.0, o.1, o.2
        )),
        _ => VersionVerdict::Refused(format!("cannot read the kernel version in `{offered}`")),
    }
}

/// Returns the unpacked pristine tree, fetching and checking it first when needed.
pub fn ensure_kernel_source(lab: &Lab) -> Result<PathBuf> {
    let lock = KernelLock::load(lab)?;
    let marker_name = ".ferrite-pristine";
    // A tree unpacked earlier and marked complete is reused as it is.
    if let Some(dir) = existing_pristine(lab, marker_name) {
        return Ok(dir);
    }
    let stage = Stage::begin(format!(
        "fetching {} from Debian's {BACKPORTS_SUITE}",
        lock.package
    ));
    let apt = PrivateApt::new(lab)?;
    let mut versions = apt.versions(&lock.package)?;
    if versions.is_empty() {
        apt.update()?;
        versions = apt.versions(&lock.package)?;
    }
    let version = if versions.contains(&lock.version) {
        lock.version.clone()
    } else {
        let newest = versions.first().ok_or_else(|| {
            Error::new(format!(
                "Debian's {BACKPORTS_SUITE} no longer offers {}",
                lock.package
            ))
            .hint("update lab/kernel.lock to a kernel the archive offers")
        })?;
        match judge_version(&lock.version, newest) {
            VersionVerdict::Locked => lock.version.clone(),
            VersionVerdict::NewerPoint => {
                warn(&format!(
                    "{} {} is gone from the archive; using {newest}, whose checksums are not in lab/kernel.lock",
                    lock.package, lock.version
                ));
                newest.clone()
            }
            VersionVerdict::Refused(why) => {
                return Err(
                    Error::new(why).hint("update lab/kernel.lock after checking the new kernel")
                )
            }
        }
    };
    let deb = apt.download(&lock.package, &version)?;
    let verified = version == lock.version;
    if verified {
        let sum = sha256_file(&deb)?;
        if sum != lock.deb_sha256 {
            return Err(Error::new(format!(
                "{} has sha256 {sum}, lab/kernel.lock expects {}",
                deb.display(),
                lock.deb_sha256
            ))
            .hint(
                "the download is corrupt or the archive changed; run `cargo xtask clean` and retry",
            ));
        }
    }
    let unpack = lab.cache.join("src/deb");
    let _ = fs::remove_dir_all(&unpack);
    fs::create_dir_all(&unpack)?;
    run_captured(cmd("dpkg-deb", &["-x"]).arg(&deb).arg(&unpack))?;
    let tarball = unpack.join(&lock.tarball);
    if verified {
        let sum = sha256_file(&tarball)?;
        if sum != lock.tarball_sha256 {
            return Err(Error::new(format!(
                "{} has sha256 {sum}, lab/kernel.lock expects {}",
                tarball.display(),
                lock.tarball_sha256
            )));
        }
    }
    let dest = lab.cache.join(format!("src/linux-{version}"));
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest)?;
    run_captured(
        cmd("tar", &["-xf"])
            .arg(&tarball)
            .arg("-C")
            .arg(&dest)
            .arg("--strip-components=1"),
    )?;
    fs::remove_dir_all(&unpack)?;
    fs::write(dest.join(marker_name), format!("{version}\n"))?;
    stage.done(&format!(
        "{} {version}{}",
        lock.package,
        if verified { ", sha256 verified" } else { "" }
    ));
    Ok(dest)
}

fn existing_pristine(lab: &Lab, marker_name: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(lab.cache.join("src"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(marker_name).is_file())
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upstream_release() {
        assert_eq!(upstream_release("7.3.4-1~bpo13+1"), Some((7, 3, 4)));
        assert_eq!(upstream_release("7.3-1"), Some((7, 3, 0)));
        assert_eq!(upstream_release("1:7.10.2-3"), Some((7, 10, 2)));
        assert_eq!(upstream_release("garbage"), None);
    }

    #[test]
    fn accepts_newer_point_release_only() {
        assert_eq!(judge_version("7.3.4-1", "7.3.4-1"), VersionVerdict::Locked);
        assert_eq!(
            judge_version("7.3.4-1", "7.3.6-1~bpo13+1"),
            VersionVerdict::NewerPoint
        );
        assert_eq!(
            judge_version("7.3.4-1", "7.3.4-2"),
            VersionVerdict::NewerPoint
        );
        assert!(matches!(
            judge_version("7.3.4-1", "7.4.1-1"),
            VersionVerdict::Refused(_)
        ));
        assert!(matches!(
            judge_version("7.3.4-1", "7.3.2-1"),
            VersionVerdict::Refused(_)
        ));
    }

    #[test]
    fn parses_lock_file() {
        let lock = KernelLock::parse(
            "# c\npackage = linux-source-7.3\nversion = 7.3.4-1\ndeb_sha256 = aa\ntarball = t.tar.xz\ntarball_sha256 = bb\n",
        )
        .unwrap();
        assert_eq!(lock.version, "7.3.4-1");
        assert_eq!(lock.tarball_sha256, "bb");
        assert!(KernelLock::parse("package = x\n").is_err());
    }
}

//! The build tree: the pristine source as a farm of hard links, with Ferrite's overlay
//! (`linux/`, in the kernel's own layout) and patches (`lab/patches/*.patch`, in order) on
//! top. Only files whose content changes are rewritten, so kbuild rebuilds only what changed;
//! a rewritten file is replaced (never written in place), so the pristine tree stays pristine.

use crate::util::{cmd, run_captured, write_if_changed, Context, Error, Result, Stage};
use crate::Lab;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MANIFEST: &str = ".ferrite-managed";
const BASE: &str = ".ferrite-base";

/// Assembles (or brings up to date) the build tree; returns its path.
pub fn assemble(lab: &Lab, pristine: &Path) -> Result<PathBuf> {
    let tree = lab.cache.join("tree");
    let base_id = pristine.display().to_string();
    if fs::read_to_string(tree.join(BASE)).ok().as_deref() != Some(base_id.as_str()) {
        let stage = Stage::begin("linking the build tree to the pristine source");
        let _ = fs::remove_dir_all(&tree);
        // Objects built from another source would look up to date against the linked
        // files' old timestamps: a new base starts from clean build directories.
        let _ = fs::remove_dir_all(lab.cache.join("build"));
        run_captured(cmd("cp", &["-al"]).arg(pristine).arg(&tree))?;
        let _ = fs::remove_file(tree.join(".ferrite-pristine"));
        fs::write(tree.join(BASE), &base_id)?;
        stage.done("");
    }

    let desired = desired_files(lab, pristine)?;
    let previous: BTreeSet<PathBuf> = fs::read_to_string(tree.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect();

    let mut changed = 0;
    for (rel, content) in &desired {
        let dest = tree.join(rel);
        match content {
            Some(bytes) => changed += usize::from(write_if_changed(&dest, bytes)?),
            None => {
                if dest.exists() {
                    fs::remove_file(&dest)?;
                    changed += 1;
                }
            }
        }
    }
    // Files Ferrite no longer manages go back to their pristine state.
    for rel in previous.difference(&desired.keys().cloned().collect()) {
        let dest = tree.join(rel);
        let original = pristine.join(rel);
        let _ = fs::remove_file(&dest);
        if original.is_file() {
            // A copy, not a link: the restored file must look newer than the objects built
            // from Ferrite's version, or make would keep them.
            fs::copy(&original, &dest).context(|| format!("restore {}", dest.display()))?;
        }
        changed += 1;
    }
    let manifest: String = desired
        .keys()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    fs::write(tree.join(MANIFEST), manifest)?;
    if changed > 0 {
        eprintln!("==> build tree: {changed} file(s) changed by the overlay and patches");
    }
    Ok(tree)
}

/// Every file the overlay and patches decide: path → content (`None`: deleted).
fn desired_files(lab: &Lab, pristine: &Path) -> Result<BTreeMap<PathBuf, Option<Vec<u8>>>> {
    let mut files = BTreeMap::new();
    let overlay = lab.repo.join("linux");
    if overlay.is_dir() {
        for path in walk(&overlay)? {
            let rel = path
                .strip_prefix(&overlay)
                .map_err(|e| Error::new(e.to_string()))?
                .to_owned();
            files.insert(rel, Some(fs::read(&path)?));
        }
    }
    let patches = patch_files(lab)?;
    if patches.is_empty() {
        return Ok(files);
    }
    // Patches apply to pristine files in a scratch copy; the result joins the overlay.
    let stage_dir = lab.cache.join("patch-stage");
    let _ = fs::remove_dir_all(&stage_dir);
    fs::create_dir_all(&stage_dir)?;
    let mut touched = BTreeSet::new();
    for patch in &patches {
        let text = fs::read_to_string(patch)?;
        for rel in files_in_patch(&text) {
            if files.contains_key(&rel) {
                return Err(Error::new(format!(
                    "{} patches {}, which the overlay also provides",
                    patch.display(),
                    rel.display()
                ))
                .hint("edit the overlay's copy instead of patching it"));
            }
            let src = pristine.join(&rel);
            let dst = stage_dir.join(&rel);
            if src.is_file() && !dst.exists() {
                fs::create_dir_all(dst.parent().unwrap_or(&stage_dir))?;
                fs::copy(&src, &dst)?;
            }
            touched.insert(rel);
        }
        run_captured(
            cmd(
                "patch",
                &[
                    "-p1",
                    "--batch",
                    "--forward",
                    "--no-backup-if-mismatch",
                    "-s",
                    "-d",
                ],
            )
            .arg(&stage_dir)
            .arg("-i")
            .arg(patch),
        )
        .map_err(|e| Error::new(format!("{} does not apply: {}", patch.display(), e.what)))?;
    }
    for rel in touched {
        let staged = stage_dir.join(&rel);
        files.insert(
            rel,
            if staged.is_file() {
                Some(fs::read(&staged)?)
            } else {
                None
            },
        );
    }
    Ok(files)
}

pub fn patch_files(lab: &Lab) -> Result<Vec<PathBuf>> {
    let dir = lab.repo.join("lab/patches");
    let mut patches: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "patch"))
            .collect(),
        Err(_) => Vec::new(),
    };
    patches.sort();
    Ok(patches)
}

/// The files a unified diff touches, from its `---`/`+++` lines (`a/`, `b/` stripped).
pub fn files_in_patch(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    // A file header is a `---` line directly followed by a `+++` line; a hunk's removed
    // line that happens to start with `--` is not.
    for pair in lines.windows(2) {
        let (Some(old), Some(new)) = (pair[0].strip_prefix("--- "), pair[1].strip_prefix("+++ "))
        else {
            continue;
        };
        for name in [old, new] {
            let name = name.split('\t').next().unwrap_or("").trim();
            if name == "/dev/null" {
                continue;
            }
            let Some((_, rel)) = name.split_once('/') else {
                continue;
            };
            let rel = PathBuf::from(rel);
            if !out.contains(&rel) {
                out.push(rel);
            }
        }
    }
    out
}

/// All regular files under a directory, sorted.
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).context(|| format!("read {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_in_a_patch() {
        let patch = "diff --git a/x/Kconfig b/x/Kconfig\n--- a/x/Kconfig\t2020\n+++ b/x/Kconfig\n@@ -1 +1 @@\n--- x\n\
                     --- /dev/null\n+++ b/y/new.c\n";
        assert_eq!(
            files_in_patch(patch),
            vec![PathBuf::from("x/Kconfig"), PathBuf::from("y/new.c")]
        );
    }
}

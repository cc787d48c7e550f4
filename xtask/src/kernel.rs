//! Configuring and building the kernel out of tree (`O=`), one build directory a flavour.

use crate::util::{run_captured, run_logged, tail_lines, Context, Error, KeyHasher, Result, Stage};
use crate::Lab;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// KASAN, lockdep, kmemleak, KUnit, Rust overflow checks: `cargo xtask test`.
    Test,
    /// No debugging, as a distribution would ship: `cargo xtask bench`.
    Bench,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Test => "test",
            Flavour::Bench => "bench",
        }
    }
}

/// Which Landlock a kernel carries (issue 4). The C and the Rust Landlock never build
/// together (`SECURITY_LANDLOCK_RUST` depends on `!SECURITY_LANDLOCK`); each is one fragment,
/// merged after every other, over the options both need (`components/landlock.config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landlock {
    C,
    Rust,
}

impl Landlock {
    pub fn name(self) -> &'static str {
        match self {
            Landlock::C => "c",
            Landlock::Rust => "rust",
        }
    }

    /// Relative to the repository.
    fn fragment(self) -> &'static str {
        match self {
            Landlock::C => "lab/configs/variants/landlock-c.config",
            Landlock::Rust => "lab/configs/variants/landlock-rust.config",
        }
    }
}

/// The Kconfig symbol of the Rust Landlock (security/landlock_rust/, branch landlock-rust).
pub const LANDLOCK_RUST_SYMBOL: &str = "SECURITY_LANDLOCK_RUST";

/// The Landlock of the main kernels (`test`, `bench`): the Rust one once the tree defines its
/// symbol, else the C one. The other one is a variant kernel (`test-landlock-c`), built only
/// when Landlock's tests or benchmark ask for it.
pub fn main_landlock(tree: &Path) -> Landlock {
    if kconfig_defines(tree, LANDLOCK_RUST_SYMBOL) {
        Landlock::Rust
    } else {
        Landlock::C
    }
}

/// Whether some `Kconfig*` file under the tree's `security/` defines `config SYMBOL`.
pub fn kconfig_defines(tree: &Path, symbol: &str) -> bool {
    let want = format!("config {symbol}");
    crate::tree::walk(&tree.join("security"))
        .unwrap_or_default()
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("Kconfig"))
        })
        .filter_map(|p| fs::read_to_string(p).ok())
        .any(|text| text.lines().any(|l| l.trim() == want))
}

/// A built kernel: what booting and packaging need from it.
pub struct Kernel {
    /// `test`, `bench`, or `test-landlock-c` for a variant: names its build directory, logs
    /// and initramfs.
    pub name: String,
    pub landlock: Landlock,
    pub out: PathBuf,
    pub release: String,
    pub bzimage: PathBuf,
    /// `lib/modules/<release>` as installed by `modules_install`, stripped.
    pub modules: PathBuf,
}

/// The fragment files merged, in order, onto `tinyconfig`: the kernel's own
/// `kvm_guest.config`, Ferrite's common options, each component's, then the flavour's.
fn fragments(lab: &Lab, tree: &Path, flavour: Flavour, landlock: Landlock) -> Result<Vec<PathBuf>> {
    let configs = lab.repo.join("lab/configs");
    let mut list = vec![
        tree.join("kernel/configs/kvm_guest.config"),
        configs.join("ferrite.config"),
    ];
    let mut components: Vec<PathBuf> = fs::read_dir(configs.join("components"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    components.retain(|p| p.extension().is_some_and(|x| x == "config"));
    components.sort();
    list.extend(components);
    list.push(configs.join(format!("{}.config", flavour.name())));
    list.push(lab.repo.join(landlock.fragment()));
    Ok(list)
}

/// The environment every `make` of the kernel runs in.
pub fn make(lab: &Lab, tree: &Path, out: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-C")
        .arg(tree)
        .arg(format!("O={}", out.display()))
        .arg("LLVM=1");
    for (k, v) in lab.toolchain_env() {
        c.env(k, v);
    }
    c
}

/// Writes the flavour's `.config` when its inputs changed, and checks that every option
/// Ferrite asks for took effect.
fn configure(
    lab: &Lab,
    tree: &Path,
    flavour: Flavour,
    landlock: Landlock,
    name: &str,
    out: &Path,
) -> Result<()> {
    let frags = fragments(lab, tree, flavour, landlock)?;
    let mut key = KeyHasher::default();
    key.update(tree.display().to_string().as_bytes())
        .update(lab.toolchain.as_bytes());
    for f in &frags {
        key.update(&fs::read(f).context(|| format!("read {}", f.display()))?);
    }
    let key = key.hex();
    let key_file = out.join(".ferrite-config-key");
    if fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str())
        && out.join(".config").is_file()
    {
        return Ok(());
    }
    let stage = Stage::begin(format!("configuring the {name} kernel"));
    let scratch = lab.cache.join(format!("build/{name}-config"));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)?;
    let log = lab.log_path(&format!("config-{name}.log"));
    run_logged(make(lab, tree, &scratch).arg("tinyconfig"), &log)?;
    let mut merge = Command::new("bash");
    merge
        .current_dir(tree)
        .arg("scripts/kconfig/merge_config.sh")
        .arg("-m")
        .arg("-O")
        .arg(&scratch)
        .arg(scratch.join(".config"))
        .args(&frags);
    run_logged(&mut merge, &log)?;
    run_logged(make(lab, tree, &scratch).arg("olddefconfig"), &log)?;
    let config = fs::read_to_string(scratch.join(".config"))?;
    let mut wrong = Vec::new();
    // kvm_guest.config names options for other architectures; only Ferrite's own are checked.
    // A later fragment overrides an earlier one (a variant's choice): the last word counts.
    let mut wanted: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for f in frags.iter().skip(1) {
        let file = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for (option, want) in parse_fragment(&fs::read_to_string(f)?) {
            wanted.insert(option, (want, file.clone()));
        }
    }
    for (option, (want, file)) in wanted {
        let got = config_value(&config, &option);
        if got != want {
            wrong.push(format!(
                "{option}: {file} asks for {}, the kernel has {}",
                want.as_deref().unwrap_or("n"),
                got.as_deref().unwrap_or("n")
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(Error::new(format!(
            "kernel options that did not take:\n  {}",
            wrong.join("\n  ")
        ))
        .hint(
            "an option is dropped when its dependencies are not met: check them in the Kconfig",
        ));
    }
    fs::create_dir_all(out)?;
    crate::util::write_if_changed(&out.join(".config"), config.as_bytes())?;
    fs::write(&key_file, &key)?;
    stage.done("");
    Ok(())
}

/// `CONFIG_X=v` → Some(v); `# CONFIG_X is not set` → None.
pub fn parse_fragment(text: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            if rest.starts_with("CONFIG_") {
                out.insert(rest.to_owned(), None);
            }
        } else if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("CONFIG_") {
                let v = (v != "n").then(|| v.to_owned());
                out.insert(k.to_owned(), v);
            }
        }
    }
    out
}

fn config_value(config: &str, option: &str) -> Option<String> {
    parse_fragment(config).remove(option).flatten()
}

/// Configures and builds the flavour's kernel and modules, showing a condensed one-line
/// status; on failure, shows the compiler's errors rather than the whole make output.
pub fn build(lab: &Lab, tree: &Path, flavour: Flavour) -> Result<Kernel> {
    build_with(lab, tree, flavour, main_landlock(tree))
}

/// [`build`] with the given Landlock: the flavour's own kernel when that is its Landlock,
/// else the variant `FLAVOUR-landlock-c` / `FLAVOUR-landlock-rust` in its own directory.
pub fn build_with(lab: &Lab, tree: &Path, flavour: Flavour, landlock: Landlock) -> Result<Kernel> {
    let name = if landlock == main_landlock(tree) {
        flavour.name().to_owned()
    } else {
        format!("{}-landlock-{}", flavour.name(), landlock.name())
    };
    if landlock == Landlock::Rust && !kconfig_defines(tree, LANDLOCK_RUST_SYMBOL) {
        return Err(Error::new(format!(
            "the {name} kernel needs CONFIG_{LANDLOCK_RUST_SYMBOL}, which the kernel tree does not define"
        )));
    }
    let out = lab.cache.join(format!("build/{name}"));
    fs::create_dir_all(&out)?;
    configure(lab, tree, flavour, landlock, &name, &out)?;

    let mut stage = Stage::begin(format!("building the {name} kernel"));
    let log_path = lab.log_path(&format!("build-{name}.log"));
    let log = fs::File::create(&log_path)?;
    let steps_file = out.join(".ferrite-steps");
    let expected: usize = fs::read_to_string(&steps_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let mut c = make(lab, tree, &out);
    c.arg(format!("-j{}", lab.jobs));
    if flavour == Flavour::Test && lab.clippy {
        c.arg("CLIPPY=1");
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?)
        .spawn()
        .context(|| "start make".to_owned())?;
    let mut steps = 0usize;
    let mut log_out = std::io::BufWriter::new(log);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            use std::io::Write;
            writeln!(log_out, "{line}")?;
            if let Some(step) = kbuild_step(&line) {
                steps += 1;
                let pct = if expected > 0 && steps <= expected {
                    format!("{:>3}% ", steps * 100 / expected)
                } else {
                    String::new()
                };
                stage.status(&format!("{pct}{steps} steps · {step}"));
            }
        }
    }
    drop(log_out);
    let status = child.wait()?;
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        return Err(Error::new(format!(
            "the {} kernel failed to build:\n{}\n  (full log: {})",
            name,
            build_errors(&text),
            log_path.display()
        )));
    }
    if steps > 0 {
        fs::write(&steps_file, steps.to_string())?;
    }
    let release = fs::read_to_string(out.join("include/config/kernel.release"))
        .context(|| "read kernel.release".to_owned())?
        .trim()
        .to_owned();
    stage.status("installing modules");
    let mods_root = out.join("ferrite-modules");
    let _ = fs::remove_dir_all(&mods_root);
    run_captured(
        make(lab, tree, &out)
            .arg("-s")
            .arg("modules_install")
            .arg(format!("INSTALL_MOD_PATH={}", mods_root.display()))
            .arg("INSTALL_MOD_STRIP=1"),
    )?;
    stage.done(&format!("{release}, {steps} steps"));
    Ok(Kernel {
        name,
        landlock,
        bzimage: out.join("arch/x86/boot/bzImage"),
        modules: mods_root.join("lib/modules").join(&release),
        out,
        release,
    })
}

/// `  CC      mm/slub.o` → `CC mm/slub.o`.
fn kbuild_step(line: &str) -> Option<String> {
    let rest = line.strip_prefix("  ")?;
    let (tag, target) = rest.split_once(' ')?;
    let is_tag = !tag.is_empty()
        && tag.len() <= 10
        && tag
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c == '-' || c.is_ascii_digit());
    is_tag.then(|| format!("{tag} {}", target.trim()))
}

/// The lines of a build log that say what broke, with a little context.
pub fn build_errors(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let mut picked = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("error:")
            || l.contains("error[")
            || l.contains("Error ")
            || l.contains("undefined")
        {
            let end = (i + 4).min(lines.len());
            for (j, ctx) in lines.iter().enumerate().take(end).skip(i) {
                if !picked.iter().any(|(k, _)| *k == j) {
                    picked.push((j, *ctx));
                }
            }
        }
        if picked.len() > 40 {
            break;
        }
    }
    if picked.is_empty() {
        return tail_lines(log, 20);
    }
    picked
        .iter()
        .map(|(_, l)| *l)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_parse_set_and_unset() {
        let f =
            parse_fragment("# c\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\nCONFIG_D=n\n");
        assert_eq!(f["CONFIG_A"], Some("y".into()));
        assert_eq!(f["CONFIG_B"], None);
        assert_eq!(f["CONFIG_C"], Some("\"x\"".into()));
        assert_eq!(f["CONFIG_D"], None);
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn variant_needs_its_symbol_in_a_security_kconfig() {
        let tree = std::env::temp_dir().join(format!("ferrite-kconfig-{}", std::process::id()));
        let dir = tree.join("security/landlock_rust");
        fs::create_dir_all(&dir).unwrap();
        assert!(!kconfig_defines(&tree, "SECURITY_LANDLOCK_RUST"));
        fs::write(dir.join("Kconfig"), "config SECURITY_LANDLOCK_RUSTY\n").unwrap();
        assert!(!kconfig_defines(&tree, "SECURITY_LANDLOCK_RUST"));
        fs::write(
            dir.join("Kconfig"),
            "# x\nconfig SECURITY_LANDLOCK_RUST\n\tbool \"Landlock in Rust\"\n",
        )
        .unwrap();
        assert!(kconfig_defines(&tree, "SECURITY_LANDLOCK_RUST"));
        fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn recognises_kbuild_steps() {
        assert_eq!(
            kbuild_step("  CC      mm/slub.o").as_deref(),
            Some("CC mm/slub.o")
        );
        assert_eq!(
            kbuild_step("  RUSTC L rust/kernel.o").as_deref(),
            Some("RUSTC L rust/kernel.o")
        );
        assert_eq!(kbuild_step("make[1]: Entering directory"), None);
        assert_eq!(kbuild_step("  some lowercase text"), None);
    }

    #[test]
    fn build_errors_pick_the_error_lines() {
        let log = "  CC a.o\nfoo.c:1:2: error: bad thing\n  1 | x\n    | ^\nmore\n  CC b.o\n";
        let e = build_errors(log);
        assert!(e.contains("error: bad thing"));
        assert!(!e.contains("CC b.o"));
    }
}

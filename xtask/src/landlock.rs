//! Landlock (issue 4): the C and the Rust implementation held to the same tests.
//!
//! Every kernel has what Landlock's tests need (`lab/configs/components/landlock.config`)
//! and one Landlock, a fragment merged last ([`kernel::Landlock`]): the main kernels (`test`,
//! `bench`) the Rust one once the tree defines `CONFIG_SECURITY_LANDLOCK_RUST`, else the C
//! one; the other side, when there is one, is the variant `FLAVOUR-landlock-c`, built only
//! when Landlock's tests or benchmark ask for it. Both sides run the same guest tests (`lab/guest/tests/landlock/`: the kernel's selftests, the sandboxer
//! demo, the lab's hostile-input tests); the verdict for the Rust side is parity: every test
//! that passes on C must pass on Rust.
//!
//! The guest programs are built here, on the host, statically, against the kernel's
//! exported uapi headers.

use crate::kernel::{self, Kernel};
use crate::ktap::Outcome;
use crate::util::{run_logged, Context, Error, Result, Stage};
use crate::Lab;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The lab's own Landlock programs (`lab/landlock/NAME.c`), installed as `/usr/bin/NAME`.
const LAB_PROGRAMS: &[&str] = &["ll-hostile", "ll-bench", "ll-audit"];

/// A counted result: (name, outcome, note).
pub type Entry = (String, Outcome, String);

/// What is said when the Rust side cannot run.
pub fn rust_absent_note() -> String {
    format!(
        "CONFIG_{} is not defined in the kernel tree (the Rust Landlock, branch landlock-rust, \
         is not merged): only the C Landlock ran",
        kernel::LANDLOCK_RUST_SYMBOL
    )
}

/// Builds the selftests, the sandboxer sample and the lab's programs; returns (host path,
/// guest path) pairs for the initramfs.
pub fn guest_programs(lab: &Lab, tree: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let stage = Stage::begin("building the Landlock selftests and tools");
    let out = lab.cache.join("build/landlock");
    let log = lab.log_path("landlock-programs.log");
    let _ = fs::remove_file(&log);
    // The kernel's exported uapi headers (`headers`: `headers_install` only copies them
    // again, with rsync).
    let uapi = out.join("uapi");
    fs::create_dir_all(&uapi)?;
    run_logged(
        kernel::make(lab, tree, &uapi).arg("-s").arg("headers"),
        &log,
    )?;
    let include = uapi.join("usr/include");
    let khdr = format!("-isystem {}", include.display());

    let selftests = out.join("selftests");
    fs::create_dir_all(&selftests)?;
    run_logged(
        Command::new("make")
            .arg("-C")
            .arg(tree.join("tools/testing/selftests/landlock"))
            .arg(format!("OUTPUT={}", selftests.display()))
            .arg(format!("KHDR_INCLUDES={khdr}"))
            .arg("LDFLAGS=-static")
            .arg("CC=gcc"),
        &log,
    )
    .map_err(|e| {
        Error::new(format!("the Landlock selftests did not build: {}", e.what))
            .hint("they need gcc, libc6-dev and libcap-dev (lab/host-packages.txt)")
    })?;

    let mut files = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(&selftests)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap_or_default().to_owned();
        files.push((p, Path::new("/opt/landlock/selftests").join(name)));
    }

    let cc = |src: &Path, bin: &Path, libs: &[&str]| -> Result<()> {
        run_logged(
            Command::new("gcc")
                .args(["-static", "-O2", "-Wall", "-isystem"])
                .arg(&include)
                .arg("-o")
                .arg(bin)
                .arg(src)
                .args(libs),
            &log,
        )
        .map_err(|e| Error::new(format!("{} did not build: {}", src.display(), e.what)))
    };
    let sandboxer = out.join("sandboxer");
    cc(&tree.join("samples/landlock/sandboxer.c"), &sandboxer, &[])?;
    files.push((sandboxer, PathBuf::from("/usr/bin/sandboxer")));
    for name in LAB_PROGRAMS {
        let bin = out.join(name);
        cc(
            &lab.repo.join(format!("lab/landlock/{name}.c")),
            &bin,
            &["-lpthread"],
        )?;
        files.push((bin, Path::new("/usr/bin").join(name)));
    }
    stage.done(&format!("{} programs", files.len()));
    Ok(files)
}

/// The results that belong to Landlock: its guest tests and its KUnit suites.
pub fn is_landlock(name: &str) -> bool {
    name.starts_with("guest: landlock/") || name.starts_with("kunit: landlock")
}

/// `guest: landlock/fs_test.layout1.x` → `fs_test`; `kunit: landlock_fs.x` → `KUnit`.
fn group(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("guest: landlock/") {
        rest.split('.').next().unwrap_or(rest).to_owned()
    } else {
        "KUnit".to_owned()
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    pass: usize,
    fail: usize,
    skip: usize,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Skip => self.skip += 1,
        }
    }
    fn cell(&self) -> String {
        format!("{} / {} / {}", self.pass, self.fail, self.skip)
    }
}

fn outcome_word(o: Option<Outcome>) -> &'static str {
    match o {
        Some(Outcome::Pass) => "pass",
        Some(Outcome::Fail) => "fail",
        Some(Outcome::Skip) => "skip",
        None => "missing",
    }
}

/// The Landlock ABI versions in the tree: (C's `landlock_abi_version`, the Rust
/// `ABI_VERSION`), what `LANDLOCK_CREATE_RULESET_VERSION` returns on each side.
pub fn abi_versions(tree: &Path) -> Result<(u32, u32)> {
    let c = abi_in(
        &tree.join("security/landlock/syscalls.c"),
        "const int landlock_abi_version =",
    )?;
    let rust = abi_in(
        &tree.join("security/landlock_rust/engine.rs"),
        "pub const ABI_VERSION: i32 =",
    )?;
    Ok((c, rust))
}

fn abi_in(file: &Path, prefix: &str) -> Result<u32> {
    let text = fs::read_to_string(file).context(|| format!("reading {}", file.display()))?;
    parse_abi(&text, prefix)
        .ok_or_else(|| Error::new(format!("no `{prefix} N;` in {}", file.display())))
}

fn parse_abi(text: &str, prefix: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.trim().trim_end_matches(';').trim().parse().ok())
}

/// Why a test that passes on C may fail on Rust without failing the run, if it may: C's own
/// KUnit suites (they test C's internals; the Rust module has its own suites), or a line of
/// `gaps` (the lab's `rust-gaps` file: `PATTERN reason`, `*` in PATTERN matching any text).
pub fn known_gap(name: &str, gaps: &str) -> Option<String> {
    if name.starts_with("kunit: landlock") && !name.starts_with("kunit: landlock_rust") {
        return Some(
            "C's own unit tests of its internals (the Rust module has its own suites)".into(),
        );
    }
    let test = name.strip_prefix("guest: ").unwrap_or(name);
    gaps.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| {
            let (pattern, why) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            glob_match(pattern, test).then(|| why.trim().to_owned())
        })
}

/// `*` matches any run of characters; everything else itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else {
                return false;
            };
            (0..=text.len()).any(|i| text.is_char_boundary(i) && glob_match(rest, &text[i..]))
        }
    }
}

/// The parity verdict for the Rust side: (test, outcome, why) for every test that ran on
/// either side. A test that passed on C must pass on Rust; one that did not pass on C is
/// not held against Rust (skipped, with both outcomes); a test only Rust has counts as it is.
pub fn parity(c: &[Entry], rust: &[Entry]) -> Vec<Entry> {
    let rust_by: BTreeMap<&str, Outcome> = rust.iter().map(|(n, o, _)| (n.as_str(), *o)).collect();
    let c_by: BTreeMap<&str, Outcome> = c.iter().map(|(n, o, _)| (n.as_str(), *o)).collect();
    let mut out = Vec::new();
    for (name, co, _) in c {
        let ro = rust_by.get(name.as_str()).copied();
        let (verdict, why) = match (co, ro) {
            (Outcome::Pass, Some(Outcome::Pass)) => (Outcome::Pass, String::new()),
            (Outcome::Pass, ro) => (
                Outcome::Fail,
                format!("passed on C, {} on Rust", outcome_word(ro)),
            ),
            (co, ro) => (
                Outcome::Skip,
                format!(
                    "{} on C (not required), {} on Rust",
                    outcome_word(Some(*co)),
                    outcome_word(ro)
                ),
            ),
        };
        out.push((name.clone(), verdict, why));
    }
    for (name, ro, note) in rust {
        if !c_by.contains_key(name.as_str()) {
            out.push((
                name.clone(),
                *ro,
                format!("only on Rust {note}").trim().to_owned(),
            ));
        }
    }
    out
}

/// Writes `target/ferrite/landlock/results.md`: pass / fail / skip per selftest binary for
/// each side, and every test whose outcome differs. Returns the table for the terminal.
pub fn write_report(
    lab: &Lab,
    c_kernel: &Kernel,
    c: &[Entry],
    rust: Option<(&Kernel, &[Entry])>,
) -> Result<String> {
    let mut groups: BTreeMap<String, (Counts, Counts)> = BTreeMap::new();
    for (n, o, _) in c {
        groups.entry(group(n)).or_default().0.add(*o);
    }
    if let Some((_, r)) = rust {
        for (n, o, _) in r {
            groups.entry(group(n)).or_default().1.add(*o);
        }
    }
    let mut md = String::new();
    let _ = writeln!(md, "# Landlock: C against Rust, the same tests\n");
    let _ = writeln!(
        md,
        "C: kernel `{}` ({}). Rust: {}. Generated by `cargo xtask test landlock`.\n",
        c_kernel.name,
        c_kernel.release,
        match rust {
            Some((k, _)) => format!("kernel `{}` ({})", k.name, k.release),
            None => format!("**absent** — {}", rust_absent_note()),
        }
    );
    let _ = writeln!(
        md,
        "| tests | C pass / fail / skip | Rust pass / fail / skip |"
    );
    let _ = writeln!(md, "|---|---|---|");
    let (mut tc, mut tr) = (Counts::default(), Counts::default());
    for (g, (cc, rc)) in &groups {
        tc.pass += cc.pass;
        tc.fail += cc.fail;
        tc.skip += cc.skip;
        tr.pass += rc.pass;
        tr.fail += rc.fail;
        tr.skip += rc.skip;
        let _ = writeln!(
            md,
            "| {g} | {} | {} |",
            cc.cell(),
            if rust.is_some() {
                rc.cell()
            } else {
                "—".into()
            }
        );
    }
    let _ = writeln!(
        md,
        "| **total** | **{}** | **{}** |",
        tc.cell(),
        if rust.is_some() {
            tr.cell()
        } else {
            "—".into()
        }
    );
    let not_passing: Vec<&Entry> = c.iter().filter(|(_, o, _)| *o != Outcome::Pass).collect();
    if !not_passing.is_empty() {
        let _ = writeln!(md, "\nNot passing on C:\n");
        for (n, o, note) in not_passing {
            let _ = writeln!(md, "- {n}: {} {note}", outcome_word(Some(*o)));
        }
    }
    if let Some((_, r)) = rust {
        let verdicts = parity(c, r);
        let diverging: Vec<_> = verdicts
            .iter()
            .filter(|(_, o, why)| *o == Outcome::Fail || why.starts_with("only on Rust"))
            .collect();
        let _ = writeln!(
            md,
            "\nParity (a test that passes on C must pass on Rust): {} failing\n",
            verdicts
                .iter()
                .filter(|(_, o, _)| *o == Outcome::Fail)
                .count()
        );
        for (n, o, why) in diverging {
            let _ = writeln!(md, "- {n}: {} — {why}", outcome_word(Some(*o)));
        }
    }
    let dir = lab.repo.join("target/ferrite/landlock");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("results.md"), &md).context(|| "write results.md".to_owned())?;
    Ok(md)
}

/// The objects a directory of the build compiled (`built-in.a`'s parts, not the archive),
/// sorted; an error if there are none.
pub fn objects_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut objects: Vec<PathBuf> = crate::tree::walk(dir)?
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|x| x == "o")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("built-in"))
        })
        .collect();
    objects.sort();
    if objects.is_empty() {
        return Err(Error::new(format!("no objects in {}", dir.display())));
    }
    Ok(objects)
}

/// Size (text+data) of the objects of a directory of the build (`security/landlock/`).
pub fn object_size(lab: &Lab, dir: &Path) -> Result<f64> {
    let objects = objects_in(dir)?;
    let mut c = Command::new("llvm-size");
    for (k, v) in lab.toolchain_env() {
        c.env(k, v);
    }
    let out = crate::util::stdout_of(c.args(&objects))?;
    let mut total = 0.0;
    for line in out.lines().skip(1) {
        let nums: Vec<f64> = line
            .split_whitespace()
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        if nums.len() == 2 {
            total += nums[0] + nums[1];
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: &str, o: Outcome) -> Entry {
        (n.to_owned(), o, String::new())
    }

    #[test]
    fn gaps_are_c_unit_tests_or_listed() {
        let gaps = "# comment\nlandlock/trace_test.* no trace events\nlandlock/x.exact why\n";
        assert!(known_gap("kunit: landlock_id.test_init_min", gaps).is_some());
        assert!(known_gap("kunit: landlock_rust_engine.rules", gaps).is_none());
        assert_eq!(
            known_gap("guest: landlock/trace_test.trace.create_domain", gaps).as_deref(),
            Some("no trace events")
        );
        assert_eq!(
            known_gap("guest: landlock/x.exact", gaps).as_deref(),
            Some("why")
        );
        assert!(known_gap("guest: landlock/x.exactly", gaps).is_none());
        assert!(known_gap("guest: landlock/fs_test.layout1.a", gaps).is_none());
    }

    #[test]
    fn abi_versions_are_read_from_the_sources() {
        let c = "static int x;\nconst int landlock_abi_version = 11;\n";
        assert_eq!(parse_abi(c, "const int landlock_abi_version ="), Some(11));
        let rust = "/// doc\npub const ABI_VERSION: i32 = 5;\n";
        assert_eq!(parse_abi(rust, "pub const ABI_VERSION: i32 ="), Some(5));
        assert_eq!(parse_abi("nothing", "pub const ABI_VERSION: i32 ="), None);
    }

    #[test]
    fn parity_holds_rust_to_what_passes_on_c() {
        let c = vec![
            r("guest: landlock/fs_test.a", Outcome::Pass),
            r("guest: landlock/fs_test.b", Outcome::Pass),
            r("guest: landlock/fs_test.c", Outcome::Skip),
            r("guest: landlock/fs_test.d", Outcome::Fail),
            r("guest: landlock/fs_test.e", Outcome::Pass),
        ];
        let rust = vec![
            r("guest: landlock/fs_test.a", Outcome::Pass),
            r("guest: landlock/fs_test.b", Outcome::Skip),
            r("guest: landlock/fs_test.c", Outcome::Fail),
            r("guest: landlock/fs_test.d", Outcome::Pass),
            r("kunit: landlock_rust.x", Outcome::Pass),
        ];
        let v = parity(&c, &rust);
        let by: BTreeMap<&str, Outcome> = v.iter().map(|(n, o, _)| (n.as_str(), *o)).collect();
        assert_eq!(by["guest: landlock/fs_test.a"], Outcome::Pass);
        assert_eq!(by["guest: landlock/fs_test.b"], Outcome::Fail);
        assert_eq!(by["guest: landlock/fs_test.c"], Outcome::Skip);
        assert_eq!(by["guest: landlock/fs_test.d"], Outcome::Skip);
        // Missing on Rust: a failure.
        assert_eq!(by["guest: landlock/fs_test.e"], Outcome::Fail);
        assert_eq!(by["kunit: landlock_rust.x"], Outcome::Pass);
    }

    #[test]
    fn results_are_grouped_by_selftest_binary() {
        assert_eq!(group("guest: landlock/fs_test.layout1.x"), "fs_test");
        assert_eq!(group("guest: landlock/hostile.size 0 is EINVAL"), "hostile");
        assert_eq!(group("kunit: landlock_fs.test"), "KUnit");
        assert!(is_landlock("kunit: landlock_id.x"));
        assert!(!is_landlock("guest: lab/environment.x"));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! `cargo xtask profile virtio-blk|landlock`: guest instructions per I/O (or per system call),
//! Rust against C, by kernel function, from the lab's QEMU plugin (`lab/host/qemu-insns`).
//! Unlike IOPS, an instruction count does not move with the host's load, so it can guide work
//! on a busy machine; it weighs every instruction the same (no cache or TLB effects), so it
//! complements the benchmark rather than replacing it.

use crate::util::Stage;
use crate::{Error, Lab, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the plugin into the cache when its source is newer; returns the library's path.
pub fn build_plugin(lab: &Lab) -> Result<PathBuf> {
    let src = lab.repo.join("lab/host/qemu-insns/insns.c");
    let lib = lab.cache.join("tools/libinsns.so");
    let newer = |a: &Path, b: &Path| -> bool {
        match (
            fs::metadata(a).and_then(|m| m.modified()),
            fs::metadata(b).and_then(|m| m.modified()),
        ) {
            (Ok(a), Ok(b)) => a > b,
            _ => true,
        }
    };
    if newer(&src, &lib) {
        fs::create_dir_all(lab.cache.join("tools"))?;
        let status = Command::new("cc")
            .args([
                "-O2",
                "-Wall",
                "-shared",
                "-fPIC",
                "-fvisibility=hidden",
                "-o",
            ])
            .arg(&lib)
            .arg(&src)
            .status()?;
        if !status.success() {
            return Err(Error::new(format!("cc failed on {}", src.display())));
        }
    }
    Ok(lib)
}

/// A window of the guest's output: `PROFILE window=N case=… side=… ios=…` and the driver's
/// symbols listed after it.
#[derive(Debug, Default)]
pub struct Window {
    pub index: u32,
    pub case: String,
    pub side: String,
    pub ios: u64,
    /// The driver module and its load address.
    pub module: Option<(String, u64)>,
}

/// The functions of a module's `.text` (laid out first at its load address), from
/// `objdump -t` of its `.ko`: (offset, name).
pub fn module_functions(objdump: &str) -> Vec<(u64, String)> {
    objdump
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (value, name, section) = (f.first()?, f.last()?, f.get(f.len().checked_sub(3)?)?);
            (*section == ".text" && f.contains(&"F"))
                .then(|| {
                    u64::from_str_radix(value, 16)
                        .ok()
                        .map(|v| (v, (*name).to_owned()))
                })
                .flatten()
        })
        .collect()
}

/// The `.ko` of `name` under `dir`.
fn find_ko(dir: &Path, name: &str) -> Option<PathBuf> {
    let want = format!("{name}.ko");
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if entry.file_type().ok()?.is_dir() {
            if let Some(found) = find_ko(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == want.as_str()) {
            return Some(p);
        }
    }
    None
}

/// The module's functions at their addresses in the guest.
fn module_syms(build: &Path, module: &Option<(String, u64)>) -> Result<Vec<(u64, String)>> {
    let Some((name, base)) = module else {
        return Ok(Vec::new());
    };
    let Some(ko) = find_ko(&build.join("drivers/block"), name) else {
        return Err(Error::new(format!(
            "no {name}.ko under {}",
            build.display()
        )));
    };
    let out = Command::new("objdump").arg("-t").arg(&ko).output()?;
    Ok(module_functions(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|(off, n)| (base.saturating_add(off), n))
        .collect())
}

pub fn parse_windows(results: &str) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for line in results.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("PROFILE window=") {
            let mut w = Window::default();
            for (i, field) in rest.split_whitespace().enumerate() {
                match (i, field.split_once('=')) {
                    (0, _) => w.index = field.parse().unwrap_or(u32::MAX),
                    (_, Some(("case", v))) => w.case = v.to_owned(),
                    (_, Some(("side", v))) => w.side = v.to_owned(),
                    (_, Some(("ios", v))) => w.ios = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            out.push(w);
        } else if let Some(rest) = line.strip_prefix("PROFILE-MOD ") {
            // A line of /proc/modules: `NAME SIZE USERS DEPS STATE 0xADDRESS`.
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(w), Some(name), Some(addr)) = (out.last_mut(), f.first(), f.last()) {
                if let Ok(a) = u64::from_str_radix(addr.trim_start_matches("0x"), 16) {
                    w.module = Some(((*name).to_owned(), a));
                }
            }
        }
    }
    out
}

/// Text symbols of `System.map`: (address, name), sorted.
pub fn system_map(text: &str) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, t, n) = (f.next()?, f.next()?, f.next()?);
            t.eq_ignore_ascii_case("t")
                .then(|| u64::from_str_radix(a, 16).ok().map(|a| (a, n.to_owned())))
                .flatten()
        })
        .collect();
    v.sort();
    v
}

/// The function containing `addr` (the last symbol at or below it; `?` below the first) and
/// whether `addr` is its first instruction.
fn symbol_at(syms: &[(u64, String)], addr: u64) -> (&str, bool) {
    match syms.partition_point(|(a, _)| *a <= addr) {
        0 => ("?", false),
        i => (&syms[i - 1].1, syms[i - 1].0 == addr),
    }
}

/// Instructions of one window by function, and the totals.
#[derive(Debug, Default)]
pub struct Profile {
    pub total: u64,
    pub kernel: u64,
    pub by_function: BTreeMap<String, u64>,
    /// Executions of the block at each function's first instruction: its calls (a loop
    /// jumping back to a function's very first instruction would count too; compilers
    /// rarely emit one).
    pub calls: BTreeMap<String, u64>,
    /// What the kernel's blocks cost TCG beyond their instructions.
    pub tcg: TcgCosts,
}

/// Kernel block executions, and the ones TCG cannot run by a chained jump or that call an
/// atomic helper on the host: under TCG these, not instructions, are what an operation
/// costs most (the plugin's ATOMICS and EXIT columns; see `lab/host/qemu-insns/insns.c`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TcgCosts {
    pub blocks: u64,
    /// Blocks ending in an indirect branch (a return, a call or jump through a pointer).
    pub indirect: u64,
    /// Blocks ending in a direct branch or fall-through to another page.
    pub cross_page: u64,
    /// Locked read-modify-write instructions.
    pub atomics: u64,
}

impl TcgCosts {
    /// Counts `execs` executions of a block with `atomics` locked instructions ending in
    /// `exit` (the plugin's letter).
    fn add(&mut self, execs: u64, atomics: u64, exit: &str) {
        self.blocks = self.blocks.saturating_add(execs);
        self.atomics = self.atomics.saturating_add(atomics.saturating_mul(execs));
        match exit {
            "i" => self.indirect = self.indirect.saturating_add(execs),
            "x" => self.cross_page = self.cross_page.saturating_add(execs),
            _ => {}
        }
    }
}

const KERNEL_START: u64 = 0xffff_8000_0000_0000;

/// Attributes the plugin's blocks (`ADDRESS INSNS EXECUTIONS [ATOMICS EXIT]` lines) to
/// functions.
pub fn attribute(
    blocks: &str,
    kernel_syms: &[(u64, String)],
    module_syms: &[(u64, String)],
) -> Profile {
    let mut module: Vec<(u64, String)> = module_syms.to_vec();
    module.sort();
    let module_range = match (module.first(), module.last()) {
        // A module's text is small: its last function ends well within 64 KiB.
        (Some(first), Some(last)) => first.0..last.0.saturating_add(0x1_0000),
        _ => 0..0,
    };
    let mut p = Profile::default();
    for line in blocks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, insns, execs, extra @ ..] = f.as_slice() else {
            continue;
        };
        let (Ok(addr), Ok(insns), Ok(execs)) = (
            u64::from_str_radix(addr, 16),
            insns.parse::<u64>(),
            execs.parse::<u64>(),
        ) else {
            continue;
        };
        let n = insns.saturating_mul(execs);
        p.total = p.total.saturating_add(n);
        let (name, entry) = if addr < KERNEL_START {
            ("(user space)".to_owned(), false)
        } else {
            p.kernel = p.kernel.saturating_add(n);
            if let [atomics, exit, ..] = extra {
                p.tcg.add(execs, atomics.parse().unwrap_or(0), exit);
            }
            if module_range.contains(&addr) {
                let (sym, entry) = symbol_at(&module, addr);
                (format!("{sym} [module]"), entry)
            } else {
                let (sym, entry) = symbol_at(kernel_syms, addr);
                (sym.to_owned(), entry)
            }
        };
        if entry {
            *p.calls.entry(name.clone()).or_default() += execs;
        }
        *p.by_function.entry(name).or_default() += n;
    }
    p
}

/// A readable name for a Rust symbol (`_R…`, v0 mangling): demangled without the crate
/// hashes; other names as they are.
pub fn short_name(sym: &str) -> String {
    let (body, suffix) = match sym.split_once(' ') {
        Some((b, rest)) => (b, format!(" {rest}")),
        None => (sym, String::new()),
    };
    if !body.starts_with("_R") {
        return sym.to_owned();
    }
    match rustc_demangle::try_demangle(body) {
        Ok(d) => format!("{d:#}{suffix}"),
        Err(_) => sym.to_owned(),
    }
}

fn per_io(n: u64, ios: u64) -> f64 {
    n as f64 / ios.max(1) as f64
}

/// What a report is about: its title and introduction, what one operation is, and which
/// functions make the component being compared.
pub struct Subject<'a> {
    pub title: &'a str,
    pub intro: &'a str,
    /// One operation, as in "instructions per I/O".
    pub unit: &'a str,
    /// The component's name in the table (e.g. "driver module").
    pub component: &'a str,
    /// Whether a function (as attributed) belongs to the component, on the Rust side and
    /// on the C side.
    pub in_rust: &'a dyn Fn(&str) -> bool,
    pub in_c: &'a dyn Fn(&str) -> bool,
}

fn sum_of(p: &Profile, keep: &dyn Fn(&str) -> bool) -> u64 {
    p.by_function
        .iter()
        .filter(|(n, _)| keep(n))
        .fold(0u64, |a, (_, v)| a.saturating_add(*v))
}

/// Writes a table row: the case, then each value with its number of decimals.
fn table_row(md: &mut String, case: &str, values: &[(f64, usize)]) {
    let _ = write!(md, "| {case} |");
    for (v, decimals) in values {
        let _ = write!(md, " {v:.decimals$} |");
    }
    md.push('\n');
}

/// The report: per case, instructions per operation on each side, the functions whose share
/// differs most, and the kernel functions called a different number of times.
pub fn report(subject: &Subject<'_>, cases: &[(String, u64, Profile, Profile)]) -> String {
    let unit = subject.unit;
    let component = subject.component;
    let mut md = format!(
        "# {}\n\n{}\n\n\
         | case | Rust total | C total | Rust kernel | C kernel | Rust {component} | C {component} | kernel Rust/C |\n\
         |---|---|---|---|---|---|---|---|\n",
        subject.title, subject.intro
    );
    for (case, ios, r, c) in cases {
        let per = |n| (per_io(n, *ios), 0);
        table_row(
            &mut md,
            case,
            &[
                per(r.total),
                per(c.total),
                per(r.kernel),
                per(c.kernel),
                per(sum_of(r, subject.in_rust)),
                per(sum_of(c, subject.in_c)),
                (r.kernel as f64 / c.kernel.max(1) as f64, 3),
            ],
        );
    }
    let _ = writeln!(
        md,
        "\nWhat the kernel's blocks cost TCG beyond their instructions, per {unit}: blocks run, \
         blocks ending in an indirect branch (a return, a call through a pointer) or in a jump to \
         another page (both a run-time lookup instead of a chained jump), locked instructions \
         (each an atomic helper call on the host).\n\n\
         | case | blocks Rust | blocks C | indirect Rust | indirect C | other page Rust | other page C | atomics Rust | atomics C |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for (case, ios, r, c) in cases {
        let (r, c) = (r.tcg, c.tcg);
        let per = |n| (per_io(n, *ios), 1);
        table_row(
            &mut md,
            case,
            &[
                per(r.blocks),
                per(c.blocks),
                per(r.indirect),
                per(c.indirect),
                per(r.cross_page),
                per(c.cross_page),
                per(r.atomics),
                per(c.atomics),
            ],
        );
    }
    for (case, ios, r, c) in cases {
        let _ = writeln!(
            md,
            "\n## {case}: functions by difference (instructions per {unit})\n\n| function | Rust | C | Rust − C |\n|---|---|---|---|"
        );
        for (rv, cv, n) in differences(&r.by_function, &c.by_function, *ios, 0.5, |_| true)
            .into_iter()
            .take(30)
        {
            let _ = writeln!(
                md,
                "| `{}` | {rv:.1} | {cv:.1} | {:+.1} |",
                short_name(n),
                rv - cv
            );
        }
        // Functions of the kernel outside the component called a different number of times
        // per operation (the component's own names differ between the sides): notifications,
        // interrupts, wake-ups, timers and helper calls show here even where their
        // instructions are few.
        let _ = writeln!(
            md,
            "\n### {case}: calls per {unit} that differ\n\n| function | Rust | C | Rust − C |\n|---|---|---|---|"
        );
        let outside = |n: &str| !(subject.in_rust)(n) && !(subject.in_c)(n) && n != "(user space)";
        for (rv, cv, n) in differences(&r.calls, &c.calls, *ios, 0.02, outside)
            .into_iter()
            .take(25)
        {
            let _ = writeln!(
                md,
                "| `{}` | {rv:.2} | {cv:.2} | {:+.2} |",
                short_name(n),
                rv - cv
            );
        }
    }
    md
}

/// The names `keep` accepts whose counts per I/O differ by at least `min` between `rust` and
/// `c`: (Rust, C, name), the largest difference first.
fn differences<'a>(
    rust: &'a BTreeMap<String, u64>,
    c: &'a BTreeMap<String, u64>,
    ios: u64,
    min: f64,
    keep: impl Fn(&str) -> bool,
) -> Vec<(f64, f64, &'a String)> {
    let mut names: Vec<&String> = rust.keys().chain(c.keys()).collect();
    names.sort();
    names.dedup();
    let mut rows: Vec<(f64, f64, &String)> = names
        .into_iter()
        .filter(|n| keep(n))
        .map(|n| {
            let rv = per_io(rust.get(n).copied().unwrap_or(0), ios);
            let cv = per_io(c.get(n).copied().unwrap_or(0), ios);
            (rv, cv, n)
        })
        .filter(|(rv, cv, _)| (rv - cv).abs() >= min)
        .collect();
    rows.sort_by(|a, b| (b.0 - b.1).abs().total_cmp(&(a.0 - a.1).abs()));
    rows
}

/// Reads the windows' block files from `dir` and attributes each to functions: (window,
/// profile). `build` is the build directory of the kernel the windows ran on (its
/// `System.map`, a window's module).
pub fn profiles<'w>(
    dir: &Path,
    build: &Path,
    windows: &'w [Window],
) -> Result<Vec<(&'w Window, Profile)>> {
    let stage = Stage::begin("attributing the instructions to functions");
    let kernel_syms = system_map(&fs::read_to_string(build.join("System.map"))?);
    let mut out = Vec::new();
    for w in windows {
        let file = dir.join(format!("window-{}.txt", w.index));
        let blocks = fs::read_to_string(&file)
            .map_err(|e| Error::new(format!("{}: {e}", file.display())))?;
        out.push((
            w,
            attribute(&blocks, &kernel_syms, &module_syms(build, &w.module)?),
        ));
    }
    stage.done(&format!("{} windows", out.len()));
    Ok(out)
}

/// Pairs the Rust and the C profile of each case, in the order the cases first came; a case
/// without both sides is left out.
pub fn pair(profiles: Vec<(&Window, Profile)>) -> Vec<(String, u64, Profile, Profile)> {
    let mut by_case: BTreeMap<String, (u64, Option<Profile>, Option<Profile>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (w, p) in profiles {
        if !order.contains(&w.case) {
            order.push(w.case.clone());
        }
        let e = by_case.entry(w.case.clone()).or_insert((w.ios, None, None));
        if w.side == "rust" {
            e.1 = Some(p);
        } else {
            e.2 = Some(p);
        }
    }
    order
        .into_iter()
        .filter_map(|case| match by_case.remove(&case) {
            Some((ios, Some(r), Some(c))) => Some((case, ios, r, c)),
            _ => None,
        })
        .collect()
}

/// The text symbols defined in the objects under `dir` (a component's build directory), from
/// `llvm-nm`: the names the component's functions have in `System.map`.
pub fn functions_of_objects(lab: &Lab, dir: &Path) -> Result<Vec<String>> {
    let objects = crate::landlock::objects_in(dir)?;
    let mut c = Command::new("llvm-nm");
    for (k, v) in lab.toolchain_env() {
        c.env(k, v);
    }
    let out = crate::util::stdout_of(c.arg("--defined-only").args(&objects))?;
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, t, n) = (f.next()?, f.next()?, f.next()?);
            t.eq_ignore_ascii_case("t").then(|| n.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_go_to_their_functions() {
        let kernel = system_map(
            "ffffffff81000000 T _text\nffffffff81001000 T blk_mq_submit_bio\nffffffff81002000 t helper\nffffffff81003000 D data\n",
        );
        let module = vec![(0xffff_ffff_a000_0000, "vb_queue_rq".to_owned())];
        let blocks =
            "ffffffff81001010 5 10\nffffffff81002004 3 2\nffffffffa0000020 4 1\n401000 2 100\n";
        let p = attribute(blocks, &kernel, &module);
        assert_eq!(p.total, 50 + 6 + 4 + 200);
        assert_eq!(p.kernel, 60);
        assert_eq!(p.by_function["blk_mq_submit_bio"], 50);
        assert_eq!(p.by_function["helper"], 6);
        assert_eq!(p.by_function["vb_queue_rq [module]"], 4);
        assert_eq!(p.by_function["(user space)"], 200);
        assert_eq!(p.tcg, TcgCosts::default());
    }

    #[test]
    fn tcg_costs_of_kernel_blocks() {
        let kernel = system_map("ffffffff81001000 T vp_notify\n");
        // A returning block run 4 times with one locked instruction, a block jumping to
        // another page run twice, a chained block run 3 times; user space is not counted.
        let blocks = "ffffffff81001000 5 4 1 i\nffffffff81001010 2 2 0 x\n\
                      ffffffff81001020 3 3 0 c\n401000 2 100 3 i\n";
        let p = attribute(blocks, &kernel, &[]);
        assert_eq!(
            p.tcg,
            TcgCosts {
                blocks: 9,
                indirect: 4,
                cross_page: 2,
                atomics: 4
            }
        );
        assert_eq!(p.kernel, 20 + 4 + 9);
    }

    #[test]
    fn calls_are_executions_of_the_first_block() {
        let kernel =
            system_map("ffffffff81001000 T vp_notify\nffffffff81002000 T vring_interrupt\n");
        // vp_notify entered 7 times (and a block inside it run 9 times); vring_interrupt's
        // first block never ran on its own, only a block inside it.
        let blocks = "ffffffff81001000 4 7\nffffffff81001008 2 9\nffffffff81002010 3 5\n";
        let p = attribute(blocks, &kernel, &[]);
        assert_eq!(p.calls.get("vp_notify"), Some(&7));
        assert_eq!(p.calls.get("vring_interrupt"), None);
        assert_eq!(p.by_function["vp_notify"], 28 + 18);
    }

    #[test]
    fn report_lists_instruction_and_call_differences() {
        let kernel = system_map("ffffffff81001000 T vp_notify\nffffffff81002000 T ktime_get\n");
        // 10 I/Os: Rust enters vp_notify 20 times, C 10 times; ktime_get the same on both.
        let rust = attribute(
            "ffffffff81001000 5 20\nffffffff81002000 3 10\n",
            &kernel,
            &[],
        );
        let c = attribute(
            "ffffffff81001000 5 10\nffffffff81002000 3 10\n",
            &kernel,
            &[],
        );
        let none = |_: &str| false;
        let subject = Subject {
            title: "t",
            intro: "i",
            unit: "I/O",
            component: "driver module",
            in_rust: &none,
            in_c: &none,
        };
        let md = report(&subject, &[("case".to_owned(), 10, rust, c)]);
        assert!(md.contains("| `vp_notify` | 10.0 | 5.0 | +5.0 |"), "{md}");
        assert!(md.contains("| `vp_notify` | 2.00 | 1.00 | +1.00 |"), "{md}");
        assert!(!md.contains("ktime_get"), "{md}");
    }

    #[test]
    fn windows_and_their_modules() {
        let w = parse_windows(
            "PROFILE window=0 case=null-randread-4k-qd1 side=rust ios=100\n\
             PROFILE-MOD rvirtio_blk 40960 0 - Live 0xffffffffa0000000\n\
             PROFILE window=1 case=null-randread-4k-qd1 side=c ios=100\n",
        );
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].side, "rust");
        assert_eq!(w[0].ios, 100);
        assert_eq!(
            w[0].module,
            Some(("rvirtio_blk".to_owned(), 0xffff_ffff_a000_0000))
        );
        assert_eq!(w[1].index, 1);
        assert!(w[1].module.is_none());
    }

    #[test]
    fn sides_paired_by_case_in_order() {
        let w = parse_windows(
            "PROFILE window=0 case=b side=rust ios=10\n\
             PROFILE window=0 case=b side=c ios=10\n\
             PROFILE window=1 case=a side=c ios=10\n\
             PROFILE window=2 case=only-rust side=rust ios=10\n\
             PROFILE window=1 case=a side=rust ios=10\n",
        );
        let total = |n| Profile {
            total: n,
            ..Profile::default()
        };
        let pairs = pair(
            w.iter()
                .zip([1, 2, 3, 4, 5])
                .map(|(w, n)| (w, total(n)))
                .collect(),
        );
        let got: Vec<(&str, u64, u64)> = pairs
            .iter()
            .map(|(case, _, r, c)| (case.as_str(), r.total, c.total))
            .collect();
        assert_eq!(got, vec![("b", 1, 2), ("a", 5, 3)]);
    }

    #[test]
    fn rust_names_shortened() {
        assert_eq!(
            short_name("_RNvXs9_Csg5dayQPFNiJ_11rvirtio_blkNtB5_3BlkNtNtNtNtCs1EKtwoKEMO2_6kernel5block2mq10operations10Operations8queue_rq [module]"),
            "<rvirtio_blk::Blk as kernel::block::mq::operations::Operations>::queue_rq [module]"
        );
        assert_eq!(short_name("virtblk_done [module]"), "virtblk_done [module]");
    }

    #[test]
    fn module_text_functions() {
        let f = module_functions(
            "0000000000000000 l    d  .text\t0000000000000000 .text\n\
             0000000000000120 g     F .text\t00000000000000a2 virtblk_done\n\
             0000000000000010 l     F .init.text\t0000000000000020 init_module\n\
             0000000000000000 l     O .data\t0000000000000008 x\n",
        );
        assert_eq!(f, vec![(0x120, "virtblk_done".to_owned())]);
    }
}

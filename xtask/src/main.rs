//! `cargo xtask`: the Ferrite lab. Builds Linux 7.3 with Ferrite's components, boots it in
//! QEMU, runs every test, and benchmarks each component against its C counterpart.

mod bench;
mod components;
mod console;
mod host;
mod initramfs;
mod kernel;
mod ktap;
mod landlock;
mod profile;
mod qemu;
mod source;
mod tree;
mod util;

use components::{Component, COMPONENTS, SUITES};
use kernel::{Flavour, Kernel};
use ktap::Outcome;
use qemu::{Boot, Disk};
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use util::{fmt_duration, Error, Result, Stage};

const USAGE: &str = "\
cargo xtask — the Ferrite lab

  cargo xtask run               build the kernel with Ferrite and boot it: a root shell on a
                                terminal (Ctrl-A X leaves), a scripted demo otherwise
  cargo xtask test [COMPONENT…] build, boot and run every test (or those of the components);
                                the last line is `N passed, N failed`
  cargo xtask bench [SUITE…]    benchmark Rust against C in the `bench` kernel
  cargo xtask profile virtio-blk guest instructions per I/O by function, Rust driver against
                                C (a QEMU plugin; independent of the host's load)
  cargo xtask profile landlock  the same per open(2)/stat(2) in a sandbox, Rust Landlock
                                against C
  cargo xtask clean             remove the cache (FERRITE_CACHE, default ~/.cache/ferrite)

Environment: FERRITE_CACHE (cache directory), FERRITE_ACCEL=kvm|tcg (skip the KVM probe),
FERRITE_JOBS (make -j), FERRITE_PAIRS / FERRITE_RUNTIME / FERRITE_ARRANGEMENT (benchmark
pairs / seconds a run / how a pair runs: virtio-blk has `together` and `alternate`),
FERRITE_SCRIPTS=component/script[,...] (only those guest scripts, e.g. landlock/fs_test).
FERRITE_SCRIPT_TIMEOUT=seconds (the guest's limit for one script, 600 by default).
";

/// Paths and settings every stage shares.
pub struct Lab {
    pub repo: PathBuf,
    pub cache: PathBuf,
    pub jobs: usize,
    pub toolchain: String,
    pub rust_lib_src: Option<PathBuf>,
    /// Build the test flavour with `CLIPPY=1`.
    pub clippy: bool,
}

impl Lab {
    fn new() -> Result<Self> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or_else(|| Error::new("xtask is not inside the repository"))?
            .to_path_buf();
        let cache = match std::env::var_os("FERRITE_CACHE") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var_os("HOME").ok_or_else(|| Error::new("HOME is not set"))?;
                PathBuf::from(home).join(".cache/ferrite")
            }
        };
        let jobs = std::env::var("FERRITE_JOBS")
            .ok()
            .and_then(|j| j.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            });
        let mut lab = Lab {
            repo,
            cache,
            jobs,
            toolchain: String::new(),
            rust_lib_src: None,
            clippy: true,
        };
        lab.toolchain = host::pinned_toolchain(&lab)?;
        fs::create_dir_all(&lab.cache)?;
        fs::create_dir_all(lab.repo.join("target/ferrite/logs"))?;
        Ok(lab)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.repo.join("target/ferrite/logs").join(name)
    }

    pub fn tools_bin(&self) -> PathBuf {
        self.cache.join("tools/bin")
    }

    /// PATH with LLVM 19 and the cache's tools first, the pinned toolchain, RUST_LIB_SRC.
    pub fn toolchain_env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut env = vec![
            (
                "PATH".to_owned(),
                format!("/usr/lib/llvm-19/bin:{}:{path}", self.tools_bin().display()),
            ),
            ("RUSTUP_TOOLCHAIN".to_owned(), self.toolchain.clone()),
        ];
        if let Some(src) = &self.rust_lib_src {
            env.push(("RUST_LIB_SRC".to_owned(), src.display().to_string()));
        }
        env
    }
}

/// Everything before a boot: host packages, toolchain, source, build tree, kernel.
fn prepare(lab: &mut Lab, flavour: Flavour) -> Result<(PathBuf, Kernel)> {
    host::ensure_supported_host()?;
    host::ensure_packages(lab)?;
    lab.rust_lib_src = host::ensure_rust_src(lab, &lab.toolchain.clone())?;
    host::ensure_bindgen(lab, &lab.toolchain.clone())?;
    let pristine = source::ensure_kernel_source(lab)?;
    let tree = tree::assemble(lab, &pristine)?;
    let kernel = kernel::build(lab, &tree, flavour)?;
    Ok((tree, kernel))
}

fn standard_disks(lab: &Lab) -> Result<Vec<Disk>> {
    let mut vda = Disk::raw_image(
        "vda",
        &lab.cache.join("disks/vda.img"),
        256 << 20,
        "ferrite-vda",
    )?;
    // Discards punch holes in the image, so a discarded range reads back as zeroes.
    vda.blockdev.push_str(",discard=unmap,file.discard=unmap");
    // A cylinder/head/sector geometry the drivers report to HDIO_GETGEO (8192 * 4 * 16 sectors).
    vda.device_props.push_str(",cyls=8192,heads=4,secs=16");
    // A small read-only disk with one queue, for the virtio block drivers' tests.
    let mut vdb = Disk::raw_image(
        "vdb",
        &lab.cache.join("disks/vdb.img"),
        16 << 20,
        "ferrite-vdb",
    )?;
    vdb.blockdev.push_str(",read-only=on");
    vdb.device_props.push_str(",num-queues=1");
    // A disk whose host side fails reads of sector 8192 and writes of sector 12288 with EIO
    // (blkdebug between the raw format and the file), for the drivers' error paths.
    let vdc_img = lab.cache.join("disks/vdc.img");
    let mut vdc = Disk::raw_image("vdc", &vdc_img, 16 << 20, "ferrite-vdc")?;
    vdc.blockdev = format!(
        "driver=raw,node-name=vdc,file.driver=blkdebug,file.image.driver=file,\
         file.image.filename={},\
         file.inject-error.0.event=read_aio,file.inject-error.0.errno=5,file.inject-error.0.sector=8192,\
         file.inject-error.1.event=write_aio,file.inject-error.1.errno=5,file.inject-error.1.sector=12288",
        vdc_img.display()
    );
    // A 64 MiB disk the virtio block tests grow at run time (`block_resize vdd-drive …`);
    // set back to 64 MiB at every boot. Its queues have 1024 entries (seg_max 1022).
    let vdd_img = lab.cache.join("disks/vdd.img");
    {
        fs::create_dir_all(vdd_img.parent().unwrap_or(Path::new(".")))?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&vdd_img)?;
        f.set_len(64 << 20)?;
    }
    let vdd = Disk {
        id: "vdd".into(),
        blockdev: format!(
            "file={},format=raw,cache=writeback,aio=threads",
            vdd_img.display()
        ),
        // Longer queues than QEMU's default: seg_max 1022, for requests of many segments.
        device_props: "serial=ferrite-vdd,queue-size=1024".into(),
        legacy_drive: true,
    };
    // A disk the virtio block tests hot-unplug under I/O (`device_del vde`) and plug again
    // (`device_add virtio-blk-pci,drive=vde,id=vde,bus=rp5,serial=ferrite-vde`).
    let vde = Disk::raw_image(
        "vde",
        &lab.cache.join("disks/vde.img"),
        64 << 20,
        "ferrite-vde",
    )?;
    // A read-only disk holding a tar of part of the kernel source: the dataset ferfs and
    // btrfs both store in ferfs's compression comparison (found by its serial).
    let mut vdf = Disk::raw_image("vdf", &dataset_tar(lab)?, 0, "ferrite-dataset")?;
    vdf.blockdev.push_str(",read-only=on");
    Ok(vec![vda, vdb, vdc, vdd, vde, vdf])
}

/// Directories of the kernel source in the compression dataset (about 7 MB in 197 files:
/// through FUSE under TCG, each algorithm takes about a minute).
const DATASET_DIRS: &[&str] = &["fs/btrfs", "fs/ext4"];

/// `disks/dataset-DIRS.tar` in the cache, made once from the build tree (deterministic:
/// sorted, owner 0, mtime 0).
fn dataset_tar(lab: &Lab) -> Result<PathBuf> {
    let name = DATASET_DIRS.join("+").replace('/', "_");
    let tar = lab.cache.join(format!("disks/dataset-{name}.tar"));
    if tar.is_file() {
        return Ok(tar);
    }
    let tree = lab.cache.join("tree");
    if !tree.join("Makefile").is_file() {
        return Err(Error::new(
            "the build tree is missing: no dataset for the ferfs tests",
        ));
    }
    fs::create_dir_all(lab.cache.join("disks"))?;
    let tmp = lab.cache.join("disks/dataset.tar.tmp");
    util::run_captured(
        util::cmd(
            "tar",
            &[
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@0",
            ],
        )
        .arg("-cf")
        .arg(&tmp)
        .arg("-C")
        .arg(&tree)
        .args(DATASET_DIRS),
    )?;
    fs::rename(&tmp, &tar)?;
    Ok(tar)
}

/// The virtio block benchmark's disks: two identical sets (`1`, then `2`, in PCI order), each
/// a `ferrite-null-N` on QEMU's `null-co` (reads return zeroes, writes go nowhere: what is
/// measured is the guest driver and the transport) and a `ferrite-raw-N` on its own raw image
/// file, written in full once so no run meets a hole. The benchmark binds one set to each
/// driver and swaps them halfway; the profile uses set 1 only.
fn virtio_bench_disks(lab: &Lab) -> Result<Vec<Disk>> {
    let size: u64 = 512 << 20;
    let mut disks = Vec::new();
    for set in 1..=2 {
        disks.push(Disk {
            id: format!("vdn{set}"),
            blockdev: format!("driver=null-co,node-name=vdn{set},size=1073741824,read-zeroes=on"),
            device_props: format!("serial=ferrite-null-{set}"),
            legacy_drive: false,
        });
        let img = lab.cache.join(format!("disks/bench-raw-{set}.img"));
        if fs::metadata(&img).map(|m| m.len()).unwrap_or(0) != size {
            use std::io::Write;
            fs::create_dir_all(img.parent().unwrap_or(Path::new(".")))?;
            let mut f = fs::File::create(&img)?;
            let chunk = vec![0xa5u8; 1 << 20];
            for _ in 0..(size >> 20) {
                f.write_all(&chunk)?;
            }
            f.sync_all()?;
        }
        disks.push(Disk::raw_image(
            &format!("vdr{set}"),
            &img,
            size,
            &format!("ferrite-raw-{set}"),
        )?);
    }
    Ok(disks)
}

fn cmd_run(lab: &mut Lab) -> Result<()> {
    let (_tree, kernel) = prepare(lab, Flavour::Test)?;
    let initrd = initramfs::build(lab, &kernel, &initramfs::ferrite_tools(lab)?)?;
    let accel = qemu::choose_accel(lab, &kernel, &initrd)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let boot = Boot {
        kernel: &kernel,
        initrd: &initrd,
        cmdline: format!(
            "ferrite.mode={}",
            if interactive { "shell" } else { "demo" }
        ),
        accel,
        deadline: Duration::from_secs(600),
        quiet_limit: Duration::from_secs(180),
        disks: standard_disks(lab)?,
        name: "run".into(),
        extra_args: Vec::new(),
    };
    if interactive {
        eprintln!(
            "==> booting the guest ({}); Ctrl-A X leaves",
            qemu::accel_name(accel)
        );
        return qemu::boot_interactive(lab, &boot);
    }
    let out = qemu::boot_scripted(lab, &boot)?;
    let demo: Vec<&str> = out
        .console
        .lines()
        .filter(|l| !l.starts_with('['))
        .collect();
    println!("{}", demo.join("\n"));
    if !out.results.contains("ferrite-demo: ok") {
        return Err(Error::new("the scripted demo did not finish"));
    }
    eprintln!("==> demo finished; on a terminal, `cargo xtask run` gives a root shell instead");
    Ok(())
}

/// Test results from every source, for the final `N passed, N failed` line.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// Known gaps: tests a component in progress does not pass yet, for a reason the lab can
    /// state (the Rust Landlock's ABI is older than the C one's); neither passed nor failed.
    gaps: usize,
    failures: Vec<String>,
    /// Every result as counted: (name, outcome, note).
    entries: Vec<(String, Outcome, String)>,
}

impl Tally {
    fn add(&mut self, name: &str, outcome: Outcome, why: &str) {
        self.entries
            .push((name.to_owned(), outcome, why.to_owned()));
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Skip => self.skipped += 1,
            Outcome::Fail => {
                self.failed += 1;
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                };
                self.failures.push(format!("{name}{why}"));
            }
        }
    }

    fn add_gap(&mut self, name: &str, why: &str) {
        self.entries
            .push((name.to_owned(), Outcome::Skip, format!("known gap: {why}")));
        self.gaps += 1;
    }

    fn pass_or_fail(&mut self, name: &str, ok: bool, why: &str) {
        self.add(name, if ok { Outcome::Pass } else { Outcome::Fail }, why);
    }

    fn summary_line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        if self.gaps > 0 {
            line.push_str(&format!(", {} known gaps", self.gaps));
        }
        line
    }
}

fn selected_components(args: &[String]) -> Result<Vec<&'static Component>> {
    if args.is_empty() {
        return Ok(COMPONENTS.iter().collect());
    }
    args.iter()
        .map(|a| {
            components::find(a).ok_or_else(|| {
                let names: Vec<&str> = COMPONENTS.iter().map(|c| c.name).collect();
                Error::new(format!("no component `{a}`"))
                    .hint(format!("components: {}", names.join(", ")))
            })
        })
        .collect()
}

fn cmd_test(lab: &mut Lab, args: &[String]) -> Result<bool> {
    let started = Instant::now();
    let chosen = selected_components(args)?;
    let mut tally = Tally::default();

    if chosen.iter().any(|c| c.host_tests) {
        host_tests(lab, &mut tally)?;
    }
    let needs_guest = chosen.iter().any(|c| c.kunit.is_some() || c.guest_tests);
    if needs_guest {
        let (tree, kernel) = prepare(lab, Flavour::Test)?;
        kernel_checks(lab, &tree, &kernel, &mut tally)?;
        let with_landlock = chosen.iter().any(|c| c.name == "landlock");
        let extra = if with_landlock {
            landlock::guest_programs(lab, &tree)?
        } else {
            Vec::new()
        };
        let cmdline = format!("ferrite.landlock={}", kernel.landlock.name());
        if with_landlock {
            // The main kernel's Landlock results wait for the other side's (parity).
            let mut main = Tally::default();
            // The Landlock selftests boot on their own (one TCG thread, see `guest_tests`);
            // the other components keep multi-threaded TCG. KUnit runs in the first boot.
            let (ll, rest): (Vec<&Component>, Vec<&Component>) =
                chosen.iter().partition(|c| c.name == "landlock");
            let mut kunit_of: &[&Component] = &chosen;
            if !rest.is_empty() {
                let boot = GuestBoot::new(&kernel, &rest, kunit_of, &extra, &cmdline);
                guest_tests(lab, &boot, &mut main)?;
                kunit_of = &[];
            }
            let boot = GuestBoot::new(&kernel, &ll, kunit_of, &extra, &cmdline).named("landlock");
            guest_tests(lab, &boot, &mut main)?;
            landlock_sides(lab, &tree, &kernel, &extra, main.entries, &mut tally)?;
        } else {
            let boot = GuestBoot::new(&kernel, &chosen, &chosen, &extra, &cmdline);
            guest_tests(lab, &boot, &mut tally)?;
        }
    }

    println!();
    if !tally.failures.is_empty() {
        println!("Failures:");
        for f in &tally.failures {
            println!("  {f}");
        }
    }
    println!("(took {})", fmt_duration(started.elapsed()));
    println!("{}", tally.summary_line());
    Ok(tally.failed == 0)
}

/// `cargo test --workspace`, each test counted.
fn host_tests(lab: &Lab, tally: &mut Tally) -> Result<()> {
    let stage = Stage::begin("host tests (cargo test --workspace)");
    let log = lab.log_path("host-tests.log");
    let out = Command::new("cargo")
        .current_dir(&lab.repo)
        .args(["test", "--workspace", "--no-fail-fast", "--color", "never"])
        .stdin(Stdio::null())
        .output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    fs::write(&log, &text)?;
    let results = parse_cargo_test(&text);
    let before = tally.failed;
    for (name, outcome) in &results {
        tally.add(&format!("host: {name}"), *outcome, "");
    }
    if !out.status.success() && tally.failed == before {
        tally.add(
            "host: cargo test",
            Outcome::Fail,
            &format!("exited with {} (see {})", out.status, log.display()),
        );
    }
    stage.done(&format!("{} tests", results.len()));
    Ok(())
}

/// `test path::name ... ok|FAILED|ignored` lines of cargo test's output.
fn parse_cargo_test(text: &str) -> Vec<(String, Outcome)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("test "))
        .filter_map(|l| l.rsplit_once(" ... "))
        .filter_map(|(name, result)| {
            let outcome = match result.trim() {
                "ok" => Outcome::Pass,
                "FAILED" => Outcome::Fail,
                r if r.starts_with("ignored") => Outcome::Skip,
                _ => return None,
            };
            Some((name.trim().to_owned(), outcome))
        })
        .collect()
}

/// Checks of the built kernel itself: Ferrite's Rust code is formatted as rustfmt wants and
/// CLIPPY=1 found nothing in it.
fn kernel_checks(lab: &Lab, tree: &Path, kernel: &Kernel, tally: &mut Tally) -> Result<()> {
    let fmt = kernel::make(lab, tree, &kernel.out)
        .arg("rustfmtcheck")
        .stdin(Stdio::null())
        .output()?;
    let text =
        String::from_utf8_lossy(&fmt.stdout).into_owned() + &String::from_utf8_lossy(&fmt.stderr);
    fs::write(lab.log_path("rustfmtcheck.log"), &text)?;
    tally.pass_or_fail(
        "kernel: make rustfmtcheck",
        fmt.status.success(),
        &util::tail_lines(&text, 10),
    );
    if lab.clippy {
        let log = fs::read_to_string(lab.log_path(&format!("build-{}.log", kernel.name)))
            .unwrap_or_default();
        let ours = overlay_rust_files(lab);
        let findings = clippy_findings(&log, &ours);
        tally.pass_or_fail(
            "kernel: CLIPPY=1 clean for Ferrite's Rust code",
            findings.is_empty(),
            &findings.join("; "),
        );
    }
    Ok(())
}

fn overlay_rust_files(lab: &Lab) -> Vec<String> {
    tree::walk(&lab.repo.join("linux"))
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| {
            p.strip_prefix(lab.repo.join("linux"))
                .ok()
                .map(|r| r.display().to_string())
        })
        .collect()
}

/// Warnings in a build log that point into the given files (`--> path:line:col`).
fn clippy_findings(log: &str, files: &[String]) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(loc) = l.trim().strip_prefix("--> ") else {
            continue;
        };
        if files.iter().any(|f| loc.contains(f.as_str())) {
            let headline = lines[..i]
                .iter()
                .rev()
                .find(|h| h.starts_with("warning") || h.starts_with("error"));
            out.push(format!("{} at {loc}", headline.unwrap_or(&"?")));
        }
    }
    out
}

/// Landlock's two sides. The main boot ran the chosen components on the main kernel's
/// Landlock (`main`: every result of that boot). While the tree has no Rust Landlock, that is
/// the C one, counted as it is, and the Rust side is reported absent. Once it has, the main
/// kernel carries the Rust one: the C variant kernel runs the same Landlock tests, its results
/// count as they are (`landlock-c: …`), and the Rust results are held to parity with them.
fn landlock_sides(
    lab: &Lab,
    tree: &Path,
    main_kernel: &Kernel,
    extra: &[(PathBuf, PathBuf)],
    main: Vec<landlock::Entry>,
    tally: &mut Tally,
) -> Result<()> {
    let (main_ll, others): (Vec<_>, Vec<_>) = main
        .into_iter()
        .partition(|(n, _, _)| landlock::is_landlock(n));
    for (name, outcome, why) in &others {
        tally.add(name, *outcome, why);
    }
    if main_kernel.landlock == kernel::Landlock::C {
        for (name, outcome, why) in &main_ll {
            tally.add(name, *outcome, why);
        }
        let note = landlock::rust_absent_note();
        eprintln!("==> landlock: the Rust side is absent: {note}");
        tally.add(
            "landlock-rust: the Rust Landlock in the tree",
            Outcome::Skip,
            &note,
        );
        let md = landlock::write_report(lab, main_kernel, &main_ll, None)?;
        eprintln!("\n{md}");
        return Ok(());
    }
    let c_kernel = kernel::build_with(lab, tree, Flavour::Test, kernel::Landlock::C)?;
    let mut scratch = Tally::default();
    kernel_checks(lab, tree, &c_kernel, &mut scratch)?;
    let landlock = components::find("landlock").expect("the landlock component");
    let only = [landlock];
    let boot = GuestBoot::new(&c_kernel, &only, &only, extra, "ferrite.landlock=c");
    guest_tests(lab, &boot, &mut scratch)?;
    let c_ll: Vec<landlock::Entry> = scratch
        .entries
        .iter()
        .filter(|(n, _, _)| landlock::is_landlock(n))
        .cloned()
        .collect();
    for (name, outcome, why) in &scratch.entries {
        tally.add(&format!("landlock-c: {name}"), *outcome, why);
    }
    // Parity is required of the ABI the Rust side claims: while it implements an older ABI
    // than C, a test that passes on C only is a known gap (listed in the report), not a failure.
    // Beyond that, only what `rust-gaps` lists (with its reason) or C's own KUnit suites.
    let (c_abi, rust_abi) = landlock::abi_versions(tree)?;
    let gaps_file = lab.repo.join("lab/guest/tests/landlock/rust-gaps");
    let gaps = std::fs::read_to_string(&gaps_file).unwrap_or_default();
    for (name, outcome, why) in landlock::parity(&c_ll, &main_ll) {
        if outcome != Outcome::Fail {
            tally.add(&name, outcome, &why);
        } else if rust_abi < c_abi {
            let why = format!("the Rust Landlock implements ABI {rust_abi}, C ABI {c_abi}; {why}");
            tally.add_gap(&name, &why);
        } else if let Some(reason) = landlock::known_gap(&name, &gaps) {
            tally.add_gap(&name, &format!("{reason}; {why}"));
        } else {
            tally.add(&name, outcome, &why);
        }
    }
    let md = landlock::write_report(lab, &c_kernel, &c_ll, Some((main_kernel, &main_ll)))?;
    eprintln!("\n{md}");
    Ok(())
}

/// One test boot of a kernel: whose guest scripts it runs, whose KUnit suites, the guest
/// programs it adds and its command line.
struct GuestBoot<'a> {
    kernel: &'a Kernel,
    /// The components whose guest scripts run.
    chosen: &'a [&'a Component],
    /// The components whose KUnit suites run (none: KUnit off).
    kunit_of: &'a [&'a Component],
    extra_tools: &'a [(PathBuf, PathBuf)],
    extra_cmdline: &'a str,
    /// Added to the kernel's name for the boot's run directory (two boots of one kernel).
    part: Option<&'a str>,
}

impl<'a> GuestBoot<'a> {
    fn new(
        kernel: &'a Kernel,
        chosen: &'a [&'a Component],
        kunit_of: &'a [&'a Component],
        extra_tools: &'a [(PathBuf, PathBuf)],
        extra_cmdline: &'a str,
    ) -> Self {
        Self {
            kernel,
            chosen,
            kunit_of,
            extra_tools,
            extra_cmdline,
            part: None,
        }
    }

    fn named(self, part: &'a str) -> Self {
        Self {
            part: Some(part),
            ..self
        }
    }
}

/// Boots the kernel for the chosen components' KUnit suites and guest tests and counts the
/// results; returns them as counted (name, outcome, note).
fn guest_tests(
    lab: &Lab,
    gb: &GuestBoot<'_>,
    tally: &mut Tally,
) -> Result<Vec<(String, Outcome, String)>> {
    let (kernel, chosen, extra_tools, extra_cmdline) =
        (gb.kernel, gb.chosen, gb.extra_tools, gb.extra_cmdline);
    let start = tally.entries.len();
    let mut tools = initramfs::ferrite_tools(lab)?;
    tools.extend(extra_tools.iter().cloned());
    let initrd = initramfs::build(lab, kernel, &tools)?;
    let mut accel = qemu::choose_accel(lab, kernel, &initrd)?;
    // The Landlock trace selftests switch tracepoints on and off under the other vCPU's feet:
    // not under multi-threaded TCG (see `Accel::TcgOneThread`), on either Landlock. Their boot
    // runs nothing else (`cmd_test`), so the other components keep both host threads.
    if chosen.iter().any(|c| c.name == "landlock") {
        accel = accel.for_text_patching();
    }
    let guest_names: Vec<&str> = chosen
        .iter()
        .filter(|c| c.guest_tests)
        .map(|c| c.name)
        .collect();
    let kunit_globs: Vec<&str> = gb.kunit_of.iter().filter_map(|c| c.kunit).collect();
    // FERRITE_SCRIPTS=component/script[,...] narrows a run to those guest scripts (while
    // working on one of them); every chosen component's scripts otherwise.
    // Only those of the components this boot runs (the C-Landlock boot runs `landlock`'s).
    let narrowed: Option<Vec<String>> = std::env::var("FERRITE_SCRIPTS").ok().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|e| guest_names.contains(&e.split('/').next().unwrap_or("")))
            .map(str::to_owned)
            .collect()
    });
    let scripts = match narrowed {
        Some(list) if !list.is_empty() => list.join(","),
        Some(_) => "none".to_owned(),
        None if guest_names.is_empty() => "none".to_owned(),
        None => guest_names.join(","),
    };
    let mut cmdline = format!("ferrite.mode=test ferrite.tests={scripts} {extra_cmdline}");
    // FERRITE_SCRIPT_TIMEOUT=seconds: the guest's limit for one script (600 by default), for a
    // loaded host where a selftest binary and its retries take longer.
    if let Some(t) = std::env::var("FERRITE_SCRIPT_TIMEOUT")
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    {
        cmdline.push_str(&format!(" ferrite.timeout={t}"));
    }
    match kunit_globs.as_slice() {
        [] => cmdline.push_str(" kunit.enable=0"),
        globs if globs.contains(&"*") => {}
        [glob] => cmdline.push_str(&format!(" kunit.filter_glob={glob}")),
        _ => {}
    }
    let boot = Boot {
        kernel,
        initrd: &initrd,
        cmdline,
        accel,
        deadline: Duration::from_secs(45 * 60),
        quiet_limit: Duration::from_secs(600),
        disks: standard_disks(lab)?,
        name: match gb.part {
            Some(part) => format!("{}-{part}", kernel.name),
            None => kernel.name.clone(),
        },
        extra_args: Vec::new(),
    };
    let out = match qemu::boot_scripted(lab, &boot) {
        Ok(out) => out,
        Err(e) => {
            tally.add("guest: boot and run to power-off", Outcome::Fail, &e.what);
            return Ok(tally.entries[start..].to_vec());
        }
    };
    let kunit = ktap::parse(&out.console);
    for r in &kunit {
        tally.add(&format!("kunit: {}", r.name), r.outcome, &r.note);
    }
    let guest = ktap::parse(&out.results);
    for r in &guest {
        tally.add(&format!("guest: {}", r.name), r.outcome, &r.note);
    }
    if !guest_names.is_empty() {
        tally.pass_or_fail(
            "guest: the test run finished",
            out.results.contains("ferrite-tests: done"),
            "the guest stopped before its tests finished",
        );
    }
    let reports = console::scan(&out.console);
    for r in &reports {
        eprintln!(
            "\n--- kernel report during {} ---\n{}\n---",
            r.during, r.excerpt
        );
        tally.add(
            &format!("console: {}", r.during),
            Outcome::Fail,
            &r.headline,
        );
    }
    tally.pass_or_fail(
        "console: no oops, BUG, WARN, KASAN, lockdep, kmemleak or Rust panic",
        reports.is_empty(),
        "",
    );
    eprintln!(
        "==> guest: {} KUnit results, {} guest test results, {} kernel reports ({} in {})",
        kunit.len(),
        guest.len(),
        reports.len(),
        qemu::accel_name(accel),
        fmt_duration(out.took)
    );
    Ok(tally.entries[start..].to_vec())
}

/// `cargo xtask profile virtio-blk|landlock`: guest instructions per operation by function,
/// Rust against C, counted by the lab's QEMU plugin (see `profile.rs`).
fn cmd_profile(lab: &mut Lab, args: &[String]) -> Result<()> {
    let what = match args {
        [w] if w == "virtio-blk" || w == "landlock" => w.as_str(),
        _ => {
            return Err(Error::new("profile what?")
                .hint("cargo xtask profile virtio-blk | cargo xtask profile landlock"))
        }
    };
    let (tree, kernel) = prepare(lab, Flavour::Bench)?;
    let plugin = profile::build_plugin(lab)?;
    let top = lab.repo.join("target/ferrite/profile");
    let dir = top.join(what);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let ios: u64 = std::env::var("FERRITE_IOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let md = if what == "virtio-blk" {
        profile_virtio_blk(lab, &kernel, &plugin, &dir, ios)?
    } else {
        profile_landlock(lab, &tree, &kernel, &plugin, &dir, ios)?
    };
    fs::write(top.join(format!("{what}.md")), &md)?;
    println!("{md}");
    Ok(())
}

/// One boot under the plugin, its windows written to `dir`; returns the guest's results.
#[allow(clippy::too_many_arguments)]
fn profile_boot(
    lab: &Lab,
    kernel: &Kernel,
    initrd: &Path,
    plugin: &Path,
    dir: &Path,
    name: &str,
    cmdline: String,
    disks: Vec<Disk>,
) -> Result<String> {
    fs::create_dir_all(dir)?;
    let boot = Boot {
        kernel,
        initrd,
        cmdline,
        // Plugins need TCG; one thread keeps the plugin's counters unraced.
        accel: qemu::Accel::TcgOneThread,
        deadline: Duration::from_secs(60 * 60),
        quiet_limit: Duration::from_secs(600),
        disks,
        name: name.into(),
        extra_args: vec![
            "-plugin".into(),
            format!("{},out={}", plugin.display(), dir.display()),
        ],
    };
    let out = qemu::boot_scripted(lab, &boot)?;
    if !out.results.contains("PROFILE-DONE") {
        return Err(Error::new(format!(
            "the profile did not finish; see target/ferrite/runs/{name}"
        )));
    }
    Ok(out.results)
}

/// Both drivers in one boot of the `bench` kernel, one after the other, per case.
fn profile_virtio_blk(
    lab: &Lab,
    kernel: &Kernel,
    plugin: &Path,
    dir: &Path,
    ios: u64,
) -> Result<String> {
    let initrd = initramfs::build(lab, kernel, &initramfs::ferrite_tools(lab)?)?;
    let results = profile_boot(
        lab,
        kernel,
        &initrd,
        plugin,
        dir,
        "profile-virtio-blk",
        format!("ferrite.mode=bench ferrite.suite=virtio-blk-profile ferrite.ios={ios}"),
        virtio_bench_disks(lab)?,
    )?;
    let windows = profile::parse_windows(&results);
    let cases = profile::pair(profile::profiles(dir, &kernel.out, &windows)?);
    let in_module = |n: &str| n.ends_with(" [module]");
    let subject = profile::Subject {
        title: "virtio-blk: guest instructions per I/O, Rust against C",
        intro: "Counted by the lab's QEMU plugin between two markers around a fio run of a fixed \
                number of I/Os on the null-co disk and on the raw image (libaio, direct), one TCG \
                thread. User space is fio itself (the same on both sides). Generated by \
                `cargo xtask profile virtio-blk`.",
        unit: "I/O",
        component: "driver module",
        in_rust: &in_module,
        in_c: &in_module,
    };
    Ok(profile::report(&subject, &cases))
}

/// The Rust Landlock (the `bench` kernel) and the C one (the `bench-landlock-c` variant): one
/// boot each, the same cases as the benchmark's.
fn profile_landlock(
    lab: &Lab,
    tree: &Path,
    rust_kernel: &Kernel,
    plugin: &Path,
    dir: &Path,
    ops: u64,
) -> Result<String> {
    if rust_kernel.landlock != kernel::Landlock::Rust {
        return Err(Error::new(format!(
            "no Rust Landlock to profile: {}",
            landlock::rust_absent_note()
        )));
    }
    let c_kernel = kernel::build_with(lab, tree, Flavour::Bench, kernel::Landlock::C)?;
    let mut tools = initramfs::ferrite_tools(lab)?;
    tools.extend(landlock::guest_programs(lab, tree)?);
    let mut profiles = Vec::new();
    let mut windows = Vec::new();
    for (side, kernel) in [("rust", rust_kernel), ("c", &c_kernel)] {
        let initrd = initramfs::build(lab, kernel, &tools)?;
        let results = profile_boot(
            lab,
            kernel,
            &initrd,
            plugin,
            &dir.join(side),
            &format!("profile-landlock-{side}"),
            format!(
                "ferrite.mode=bench ferrite.suite=landlock-profile ferrite.side={side} \
                 ferrite.ios={ops}"
            ),
            Vec::new(),
        )?;
        windows.push((side, kernel, profile::parse_windows(&results)));
    }
    for (side, kernel, w) in &windows {
        profiles.extend(profile::profiles(&dir.join(side), &kernel.out, w)?);
    }
    let rust_fns =
        profile::functions_of_objects(lab, &rust_kernel.out.join("security/landlock_rust"))?;
    let c_fns = profile::functions_of_objects(lab, &c_kernel.out.join("security/landlock"))?;
    let in_rust = |n: &str| rust_fns.binary_search_by(|f| f.as_str().cmp(n)).is_ok();
    let in_c = |n: &str| c_fns.binary_search_by(|f| f.as_str().cmp(n)).is_ok();
    let subject = profile::Subject {
        title: "Landlock: guest instructions per system call, Rust against C",
        intro: "Counted by the lab's QEMU plugin in a window `ll-bench --ops=N` opens and closes \
                around N operations (the sandbox's setup left out), one boot of each kernel, one \
                TCG thread: the `bench` kernel with the Rust Landlock and the `bench-landlock-c` \
                variant. User space is ll-bench (the same on both sides). Generated by \
                `cargo xtask profile landlock`.",
        unit: "call",
        component: "Landlock",
        in_rust: &in_rust,
        in_c: &in_c,
    };
    Ok(profile::report(&subject, &profile::pair(profiles)))
}

fn cmd_bench(lab: &mut Lab, args: &[String]) -> Result<()> {
    let suites: Vec<&components::Suite> = if args.is_empty() {
        SUITES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                components::find_suite(a).ok_or_else(|| {
                    let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
                    Error::new(format!("no benchmark suite `{a}`"))
                        .hint(format!("suites: {}", names.join(", ")))
                })
            })
            .collect::<Result<_>>()?
    };
    let (tree, kernel) = prepare(lab, Flavour::Bench)?;
    let initrd = initramfs::build(lab, &kernel, &initramfs::ferrite_tools(lab)?)?;
    let accel = qemu::choose_accel(lab, &kernel, &initrd)?;
    let dir = lab.repo.join("target/ferrite/bench");
    fs::create_dir_all(&dir)?;
    for suite in suites {
        let pairs = std::env::var("FERRITE_PAIRS")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(suite.pairs)
            .max(5);
        let runtime_ms = std::env::var("FERRITE_RUNTIME")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(suite.runtime_ms, |s| {
                (s * 1000.0).round().clamp(100.0, 3.6e6) as u32
            });
        // Whole seconds for the suites that take them, the exact figure for those that can.
        let runtime = runtime_ms.div_ceil(1000);
        let runtime_text = format!("{}", f64::from(runtime_ms) / 1000.0);
        let wanted = std::env::var("FERRITE_ARRANGEMENT").ok();
        let (arrangement, arranged) = match wanted.as_deref() {
            None | Some("") => suite.arrangements[0],
            Some(w) => *suite
                .arrangements
                .iter()
                .find(|(name, _)| *name == w)
                .ok_or_else(|| {
                    let names: Vec<&str> = suite.arrangements.iter().map(|a| a.0).collect();
                    Error::new(format!("suite {} has no arrangement `{w}`", suite.name))
                        .hint(format!("FERRITE_ARRANGEMENT: {}", names.join(", ")))
                })?,
        };
        if suite.kernels {
            bench_kernels(lab, &tree, &kernel, suite, pairs, runtime, accel, &dir)?;
            continue;
        }
        let boot = Boot {
            kernel: &kernel,
            initrd: &initrd,
            cmdline: format!("ferrite.mode=bench ferrite.suite={} ferrite.pairs={pairs} ferrite.runtime={runtime} ferrite.runtime_ms={runtime_ms} ferrite.arrangement={arrangement}", suite.name),
            accel,
            deadline: Duration::from_secs(suite.deadline_secs),
            quiet_limit: Duration::from_secs(300),
            disks: match suite.disks {
                components::BenchDisks::Standard => standard_disks(lab)?,
                components::BenchDisks::VirtioBench => virtio_bench_disks(lab)?,
            },
            name: format!("bench-{}", suite.name),
            extra_args: Vec::new(),
        };
        let out = qemu::boot_scripted(lab, &boot)?;
        if !out.results.contains("BENCH-DONE") {
            return Err(Error::new(format!(
                "the {} suite did not finish; see target/ferrite/runs/bench-{}",
                suite.name, suite.name
            )));
        }
        let rows = bench::summarise(&bench::parse_fio_lines(&out.results)?);
        let footprint = footprint(lab, &tree, &kernel, suite)?;
        let context = format!(
            "{}. Kernel {} (`bench` flavour), QEMU {} on this machine, {pairs} pairs of {runtime_text} s {arranged}. \
             Generated by `cargo xtask bench {}`.",
            suite.about,
            kernel.release,
            qemu::accel_name(accel),
            suite.name
        );
        write_bench_results(&dir, suite, &rows, &footprint, &context)?;
    }
    Ok(())
}

/// A suite whose sides are two kernels (Landlock: the `bench` kernel carries the Rust one
/// once the tree has it, the `bench-landlock-c` variant the C one): boots alternate (C then
/// Rust in odd pairs, Rust then C in even ones), one batch of every case a boot, `pairs` times. Without the Rust side in the tree, the C kernel takes
/// the Rust slot too (C against C: the noise floor), and the report says so.
#[allow(clippy::too_many_arguments)]
fn bench_kernels(
    lab: &Lab,
    tree: &Path,
    main_kernel: &Kernel,
    suite: &components::Suite,
    pairs: u32,
    runtime: u32,
    accel: qemu::Accel,
    dir: &Path,
) -> Result<()> {
    let mut tools = initramfs::ferrite_tools(lab)?;
    tools.extend(landlock::guest_programs(lab, tree)?);
    // The main `bench` kernel carries the Rust Landlock once the tree has it; the C one is
    // then the variant `bench-landlock-c`.
    let c_variant;
    let (c_kernel, rust_kernel) = if main_kernel.landlock == kernel::Landlock::Rust {
        c_variant = kernel::build_with(lab, tree, Flavour::Bench, kernel::Landlock::C)?;
        (&c_variant, Some(main_kernel))
    } else {
        eprintln!(
            "==> {}: the Rust side is absent ({}); running C against C",
            suite.name,
            landlock::rust_absent_note()
        );
        (main_kernel, None)
    };
    let c_initrd = initramfs::build(lab, c_kernel, &tools)?;
    let rust_initrd = match rust_kernel {
        Some(k) => Some(initramfs::build(lab, k, &tools)?),
        None => None,
    };
    let mut results = String::new();
    for pair in 1..=pairs {
        // C first in odd pairs, Rust first in even ones: whatever favours one position in a
        // pair (the host's caches, a first boot) falls on both sides.
        let order = if pair % 2 == 1 {
            ["c", "rust"]
        } else {
            ["rust", "c"]
        };
        for side in order {
            let (kernel, initrd) = match (side, rust_kernel, &rust_initrd) {
                ("rust", Some(k), Some(i)) => (k, i),
                _ => (c_kernel, &c_initrd),
            };
            let boot = Boot {
                kernel,
                initrd,
                cmdline: format!(
                    "ferrite.mode=bench ferrite.suite={} ferrite.side={side} ferrite.pair={pair} \
                     ferrite.runtime={runtime}",
                    suite.name
                ),
                accel,
                deadline: Duration::from_secs(suite.deadline_secs),
                quiet_limit: Duration::from_secs(300),
                disks: Vec::new(),
                name: format!("bench-{}-{side}", suite.name),
                extra_args: Vec::new(),
            };
            let out = qemu::boot_scripted(lab, &boot)?;
            if !out.results.contains("BENCH-DONE") {
                return Err(Error::new(format!(
                    "the {} suite did not finish on the {side} side (pair {pair}); see \
                     target/ferrite/runs/bench-{}-{side}",
                    suite.name, suite.name
                )));
            }
            results.push_str(&out.results);
        }
    }
    fs::write(dir.join(format!("{}.log", suite.name)), &results)?;
    let rows = bench::summarise(&bench::parse_value_lines(&results)?);
    let mut footprint = Vec::new();
    let loc = |p: &str| -> Result<f64> {
        let mut total = 0usize;
        for f in tree::walk(&tree.join(p))? {
            let ext = f.extension().and_then(|x| x.to_str()).unwrap_or("");
            if matches!(ext, "rs" | "c" | "h") {
                total += code_lines(&fs::read_to_string(&f)?);
            }
        }
        Ok(total as f64)
    };
    let c_dir = suite.c_sources[0].trim_end_matches('/');
    let rust_dir = suite.rust_sources[0].trim_end_matches('/');
    let absent = f64::NAN;
    footprint.push(bench::Footprint {
        case: format!("{rust_dir}/*.o / {c_dir}/*.o"),
        metric: "object text+data",
        unit: "bytes",
        rust: match rust_kernel {
            Some(k) => landlock::object_size(lab, &k.out.join(rust_dir))?,
            None => absent,
        },
        c: landlock::object_size(lab, &c_kernel.out.join(c_dir))?,
    });
    footprint.push(bench::Footprint {
        case: format!("{rust_dir}/ / {c_dir}/"),
        metric: "lines of code",
        unit: "non-blank, non-comment",
        rust: if rust_kernel.is_some() {
            loc(rust_dir)?
        } else {
            absent
        },
        c: loc(c_dir)?,
    });
    let sides = match rust_kernel {
        Some(k) => format!(
            "C: kernel `{}`; Rust: kernel `{}` ({})",
            c_kernel.name, k.name, k.release
        ),
        None => format!(
            "**The Rust side is absent** ({}): both columns are the C Landlock of the `{}` \
             kernel, the \"Rust\" column from its second boot of each pair — C against C, \
             which shows the noise floor",
            landlock::rust_absent_note(),
            c_kernel.name
        ),
    };
    let context = format!(
        "{}. {sides}. Kernel {} (`bench` flavour), QEMU {} on this machine, {pairs} pairs of \
         {runtime} s {} (C first in odd pairs, Rust first in even ones). Generated by \
         `cargo xtask bench {}`.",
        suite.about,
        c_kernel.release,
        qemu::accel_name(accel),
        suite.arrangements[0].1,
        suite.name
    );
    write_bench_results(dir, suite, &rows, &footprint, &context)
}

/// Writes `SUITE.{json,md,svg}` into `dir` and prints the Markdown table.
fn write_bench_results(
    dir: &Path,
    suite: &components::Suite,
    rows: &[bench::Row],
    footprint: &[bench::Footprint],
    context: &str,
) -> Result<()> {
    let json = serde_json::to_string_pretty(&bench::to_json(rows, footprint))
        .map_err(|e| Error::new(e.to_string()))?;
    fs::write(dir.join(format!("{}.json", suite.name)), json + "\n")?;
    let md = bench::to_markdown(suite.name, rows, footprint, context);
    fs::write(dir.join(format!("{}.md", suite.name)), &md)?;
    fs::write(
        dir.join(format!("{}.svg", suite.name)),
        bench::to_svg(suite.name, rows),
    )?;
    println!("{md}");
    eprintln!("==> wrote {}/{}.{{json,md,svg}}", dir.display(), suite.name);
    Ok(())
}

/// Module size (text+data of the `.ko`) and lines of code of both sides.
fn footprint(
    lab: &Lab,
    tree: &Path,
    kernel: &Kernel,
    suite: &components::Suite,
) -> Result<Vec<bench::Footprint>> {
    let size = |ko: &str| -> Result<f64> {
        let path = kernel.out.join(ko);
        let mut c = Command::new("llvm-size");
        for (k, v) in lab.toolchain_env() {
            c.env(k, v);
        }
        let out = util::stdout_of(c.arg(&path))?;
        // Berkeley format: text data bss dec hex filename.
        let nums: Vec<f64> = out
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        if nums.len() != 2 {
            return Err(Error::new(format!(
                "cannot read the size of {}",
                path.display()
            )));
        }
        Ok(nums[0] + nums[1])
    };
    let loc = |paths: &[&str]| -> Result<f64> {
        let mut total = 0usize;
        for p in paths {
            let path = tree.join(p);
            let files = if path.is_file() {
                vec![path]
            } else {
                tree::walk(&path)?
            };
            for f in files {
                let ext = f.extension().and_then(|x| x.to_str()).unwrap_or("");
                if matches!(ext, "rs" | "c" | "h") {
                    total += code_lines(&fs::read_to_string(&f)?);
                }
            }
        }
        Ok(total as f64)
    };
    let module_name = |p: &str| {
        Path::new(p)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    Ok(vec![
        bench::Footprint {
            case: format!(
                "{} / {}",
                module_name(suite.rust_module),
                module_name(suite.c_module)
            ),
            metric: "module text+data",
            unit: "bytes",
            rust: size(suite.rust_module)?,
            c: size(suite.c_module)?,
        },
        bench::Footprint {
            case: format!(
                "{} / {}",
                suite.rust_sources.join(" "),
                suite.c_sources.join(" ")
            ),
            metric: "lines of code",
            unit: "non-blank, non-comment",
            rust: loc(suite.rust_sources)?,
            c: loc(suite.c_sources)?,
        },
    ])
}

/// Lines that are neither blank nor only comment (`//` lines, `/* … */` blocks).
fn code_lines(text: &str) -> usize {
    let mut in_block = false;
    let mut n = 0;
    for line in text.lines().map(str::trim) {
        if in_block {
            if line.contains("*/") {
                in_block = false;
                if !line.ends_with("*/") {
                    n += 1;
                }
            }
            continue;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if line.starts_with("/*") {
            in_block = !line.contains("*/");
            continue;
        }
        n += 1;
    }
    n
}

fn cmd_clean(lab: &Lab) -> Result<()> {
    if lab.cache.exists() {
        fs::remove_dir_all(&lab.cache)
            .map_err(|e| Error::new(format!("remove {}: {e}", lab.cache.display())))?;
    }
    let _ = fs::remove_dir_all(lab.repo.join("target/ferrite"));
    eprintln!("==> removed {}", lab.cache.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = (|| -> Result<bool> {
        if matches!(command, "help" | "-h" | "--help") {
            print!("{USAGE}\nComponents (cargo xtask test COMPONENT):\n");
            for c in COMPONENTS {
                println!("  {:<8} {}", c.name, c.about);
            }
            println!("\nBenchmark suites (cargo xtask bench SUITE):");
            for s in SUITES {
                println!("  {:<8} {}", s.name, s.about);
            }
            return Ok(true);
        }
        let mut lab = Lab::new()?;
        match command {
            "run" => cmd_run(&mut lab).map(|_| true),
            "test" => cmd_test(&mut lab, rest),
            "bench" => cmd_bench(&mut lab, rest).map(|_| true),
            "profile" => cmd_profile(&mut lab, rest).map(|_| true),
            "clean" => cmd_clean(&lab).map(|_| true),
            other => Err(Error::new(format!("unknown command `{other}`")).hint("cargo xtask help")),
        }
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            if command == "test" {
                // The run did not get to count its tests: say so in the form CI reads.
                println!("0 passed, 1 failed");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_lines_are_counted() {
        let out = "running 3 tests\ntest a::b ... ok\ntest a::c ... FAILED\ntest a::d ... ignored, slow\n\
                   test src/lib.rs - f (line 3) ... ok\ntest result: FAILED. 2 passed; 1 failed\n";
        let r = parse_cargo_test(out);
        assert_eq!(r.len(), 4);
        assert_eq!(r[1], ("a::c".to_owned(), Outcome::Fail));
        assert_eq!(r[2].1, Outcome::Skip);
    }

    #[test]
    fn summary_line_is_what_ci_reads() {
        let mut t = Tally::default();
        t.add("a", Outcome::Pass, "");
        t.add("b", Outcome::Fail, "why");
        assert_eq!(t.summary_line(), "1 passed, 1 failed");
        t.add("c", Outcome::Skip, "");
        assert_eq!(t.summary_line(), "1 passed, 1 failed, 1 skipped");
        assert_eq!(t.failures, vec!["b: why".to_owned()]);
        t.add_gap("d", "not yet");
        assert_eq!(
            t.summary_line(),
            "1 passed, 1 failed, 1 skipped, 1 known gaps"
        );
    }

    #[test]
    fn clippy_findings_only_in_our_files() {
        let log = "warning: unused import\n  --> drivers/block/rvirtio/x.rs:3:5\nwarning: other\n  --> rust/kernel/lib.rs:1:1\n";
        let f = clippy_findings(log, &["drivers/block/rvirtio/x.rs".to_owned()]);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("warning: unused import"));
    }

    #[test]
    fn code_lines_skip_comments_and_blanks() {
        let src = "// SPDX\n\n/* a\n * b\n */\nint x; /* y */\n/** z */\nfn f() {}\n";
        assert_eq!(code_lines(src), 2);
    }
}

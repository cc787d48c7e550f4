//! Booting a guest in QEMU: KVM when it works here, TCG otherwise; a serial console
//! (`ttyS0`, the kernel log) and a results port (`ttyS1`, what the guest's tests print).
//! Every boot has a deadline and an inactivity limit; a hung guest is killed and the end of
//! its console shown.

use crate::kernel::Kernel;
use crate::util::{fmt_duration, tail_lines, warn, Context, Error, Result, Stage};
use crate::Lab;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
    /// TCG with every vCPU on one host thread (`thread=single`), for guests that patch hot
    /// kernel text while running. QEMU 7.2's multi-threaded TCG can keep a translation made
    /// from the middle of a `text_poke` (an `int3` the kernel has already replaced): switching
    /// tracepoints on and off (the C Landlock's trace selftests, which register probes on
    /// `sched_switch`/`sched_wakeup` through `set_event_pid`) then ends in
    /// `Oops: int3` at a tracepoint call site whose bytes in memory are already right. Seen in
    /// 3 of 4 boots running `scoped_abstract_unix_test -f trace_unix` 40 times with
    /// `thread=multi`, in none of 4 with `thread=single` (each 40 runs, 126-214 s a boot
    /// against 112 s); the vCPUs stay two.
    TcgOneThread,
}

impl Accel {
    /// The same accelerator, but never running the guest's vCPUs on threads of their own
    /// under TCG (see [`Accel::TcgOneThread`]).
    pub fn for_text_patching(self) -> Accel {
        match self {
            Accel::Tcg => Accel::TcgOneThread,
            other => other,
        }
    }
}

/// One boot's settings.
pub struct Boot<'a> {
    pub kernel: &'a Kernel,
    pub initrd: &'a Path,
    /// `ferrite.*` parameters and any others, appended to the base command line.
    pub cmdline: String,
    pub accel: Accel,
    /// Whole-boot deadline.
    pub deadline: Duration,
    /// Longest time without any new console or results output.
    pub quiet_limit: Duration,
    pub disks: Vec<Disk>,
    pub name: String,
    /// More QEMU arguments (e.g. `-plugin …` for `cargo xtask profile`).
    pub extra_args: Vec<String>,
}

pub struct Disk {
    pub id: String,
    /// A `-blockdev` node description, e.g. `driver=file,filename=…`.
    pub blockdev: String,
    /// Extra `-device virtio-blk-pci` properties, e.g. `serial=…`.
    pub device_props: String,
    /// `blockdev` is a `-drive if=none` description instead, whose backend `ID-drive` the
    /// human monitor can name (e.g. `block_resize ID-drive 128M`); unlike a `-blockdev` node
    /// it goes when its device is unplugged.
    pub legacy_drive: bool,
}

impl Disk {
    /// A raw image file, created (sparse) at the given size when missing.
    pub fn raw_image(id: &str, path: &Path, size: u64, serial: &str) -> Result<Disk> {
        if !path.exists() {
            fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            let f = fs::File::create(path)?;
            f.set_len(size)?;
        }
        Ok(Disk {
            id: id.into(),
            blockdev: format!(
                "driver=raw,node-name={id},file.driver=file,file.filename={},file.aio=threads,cache.direct=off",
                path.display()
            ),
            device_props: format!("serial={serial}"),
            legacy_drive: false,
        })
    }
}

/// What a finished boot left behind.
pub struct Outcome {
    pub console: String,
    pub results: String,
    pub took: Duration,
}

const MEMORY: &str = "2G";
const CPUS: &str = "2";

/// `no_timer_check`: under TCG on a loaded host the IO-APIC timer check can miss its ticks
/// and panic the boot ("IO-APIC + timer doesn't work"); the emulated timer is known good.
///
/// `no5lvl`: TCG's `-cpu max` offers LA57. `identify_cpu()` clears the boot CPU's feature
/// bits with interrupts enabled, and until the bits are read back `pgtable_l5_enabled()` is
/// false; an interrupt landing in that window makes KASAN judge a direct-map address with the
/// 4-level layout and report a false "wild-memory-access in do_raw_spin_lock" (seen once in a
/// full run, not reproducible on demand). Four-level paging keeps the answer constant.
pub fn base_cmdline() -> &'static str {
    "console=ttyS0,115200 panic=-1 rdinit=/init nokaslr no_timer_check no5lvl"
}

fn qemu_command(boot: &Boot, run_dir: &Path, interactive: bool) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-machine",
        "q35",
        "-m",
        MEMORY,
        "-smp",
        CPUS,
        "-no-reboot",
        "-nodefaults",
    ]);
    match boot.accel {
        Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => c.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
        Accel::TcgOneThread => c.args(["-accel", "tcg,thread=single", "-cpu", "max"]),
    };
    c.arg("-kernel").arg(&boot.kernel.bzimage);
    c.arg("-initrd").arg(boot.initrd);
    c.arg("-append")
        .arg(format!("{} {}", base_cmdline(), boot.cmdline));
    if interactive {
        c.args(["-nographic", "-serial", "mon:stdio"]);
    } else {
        c.args(["-display", "none"]);
        c.arg("-serial")
            .arg(format!("file:{}", run_dir.join("console.log").display()));
    }
    c.arg("-serial")
        .arg(format!("file:{}", run_dir.join("results.log").display()));
    c.arg("-monitor").arg(format!(
        "unix:{},server=on,wait=off",
        run_dir.join("monitor.sock").display()
    ));
    // Each disk sits behind its own PCIe root port `rpN` (N from 1, in order), so that it can
    // be hot-unplugged (`device_del ID`) and plugged again (`device_add …,bus=rpN`).
    for (i, d) in boot.disks.iter().enumerate() {
        let port = i + 1;
        c.arg("-device").arg(format!(
            "pcie-root-port,id=rp{port},bus=pcie.0,chassis={port},slot={port}"
        ));
        let drive = if d.legacy_drive {
            let drive = format!("{}-drive", d.id);
            c.arg("-drive")
                .arg(format!("if=none,id={drive},{}", d.blockdev));
            drive
        } else {
            c.arg("-blockdev").arg(&d.blockdev);
            d.id.clone()
        };
        let props = if d.device_props.is_empty() {
            String::new()
        } else {
            format!(",{}", d.device_props)
        };
        c.arg("-device").arg(format!(
            "virtio-blk-pci,drive={drive},id={},bus=rp{port}{props}",
            d.id
        ));
    }
    // A NIC with no way out: user networking restricted to the guest itself.
    c.args([
        "-netdev",
        "user,id=net0,restrict=on",
        "-device",
        "virtio-net-pci,netdev=net0",
    ]);
    c.args(&boot.extra_args);
    c
}

fn run_dir(lab: &Lab, name: &str) -> Result<PathBuf> {
    let dir = lab.repo.join("target/ferrite/runs").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Boots with the user on the serial console (Ctrl-A X leaves).
pub fn boot_interactive(lab: &Lab, boot: &Boot) -> Result<()> {
    let dir = run_dir(lab, &boot.name)?;
    let status = qemu_command(boot, &dir, true)
        .status()
        .context(|| "start qemu-system-x86_64".to_owned())?;
    if !status.success() {
        return Err(Error::new(format!("QEMU exited with {status}")));
    }
    Ok(())
}

/// Boots without a terminal and waits for the guest to power off, showing the guest's
/// progress in one line. A guest test can ask the host to act on the VM by printing
/// `ferrite-host: monitor COMMAND` on the results port (e.g. `device_del vdb` to hot-unplug
/// a disk under I/O); the host sends COMMAND to QEMU's monitor.
pub fn boot_scripted(lab: &Lab, boot: &Boot) -> Result<Outcome> {
    let dir = run_dir(lab, &boot.name)?;
    let mut stage = Stage::begin(format!(
        "booting {} ({})",
        boot.name,
        accel_name(boot.accel)
    ));
    let mut child = qemu_command(boot, &dir, false)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("qemu.stderr"))?)
        .spawn()
        .context(|| "start qemu-system-x86_64".to_owned())?;
    let console_path = dir.join("console.log");
    let results_path = dir.join("results.log");
    let start = Instant::now();
    let mut last_growth = Instant::now();
    let mut seen = (0u64, 0u64);
    let mut results_seen = 0usize;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(200));
        let sizes = (file_len(&console_path), file_len(&results_path));
        if sizes != seen {
            seen = sizes;
            last_growth = Instant::now();
            if let Ok(results) = fs::read_to_string(&results_path) {
                let complete = results.rfind('\n').map_or(0, |i| i + 1);
                if complete > results_seen {
                    for line in results[results_seen..complete].lines() {
                        if let Some(command) = line.trim().strip_prefix("ferrite-host: monitor ") {
                            let reply = monitor_command_settled(&dir.join("monitor.sock"), command);
                            // Every command and reply of the boot, in order.
                            use std::io::Write;
                            let _ = fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(dir.join("monitor.log"))
                                .and_then(|mut f| writeln!(f, "{command}\n{reply}"));
                        }
                    }
                    results_seen = complete;
                }
            }
            stage.status(&last_line(&console_path));
        }
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        if start.elapsed() > boot.deadline {
            break Err(format!(
                "did not finish within {}",
                fmt_duration(boot.deadline)
            ));
        }
        if last_growth.elapsed() > boot.quiet_limit {
            break Err(format!(
                "printed nothing for {}",
                fmt_duration(boot.quiet_limit)
            ));
        }
    };
    let console = fs::read_to_string(&console_path).unwrap_or_default();
    let results = fs::read_to_string(&results_path).unwrap_or_default();
    match outcome {
        Ok(status) if status.success() => {
            let took = stage.done("powered off");
            Ok(Outcome {
                console,
                results,
                took,
            })
        }
        Ok(status) => {
            let stderr = fs::read_to_string(dir.join("qemu.stderr")).unwrap_or_default();
            Err(Error::new(format!(
                "QEMU exited with {status}:\n{}\n--- last 50 console lines ---\n{}",
                tail_lines(&stderr, 10),
                tail_lines(&console, 50)
            )))
        }
        Err(why) => {
            // Before killing it: what the disks' virtqueues held (a hang under I/O).
            let queues = dir.join("virtqueues.log");
            if !boot.disks.is_empty() {
                let _ = fs::write(
                    &queues,
                    virtqueue_states(&dir.join("monitor.sock"), &boot.disks),
                );
            }
            kill(&mut child);
            Err(Error::new(format!(
                "the guest {why} and was stopped (its disks' virtqueues: {}); last 50 console lines ({}):\n{}",
                queues.display(),
                console_path.display(),
                tail_lines(&console, 50)
            )))
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn last_line(p: &Path) -> String {
    let Ok(mut f) = fs::File::open(p) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(400)));
    let mut buf = String::new();
    let _ = f.read_to_string(&mut buf);
    buf.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

pub fn accel_name(a: Accel) -> &'static str {
    match a {
        Accel::Kvm => "KVM",
        Accel::Tcg => "TCG",
        Accel::TcgOneThread => "TCG (one thread)",
    }
}

/// Sends one command to a running QEMU's monitor (e.g. `device_del disk1`).
pub fn monitor_command(socket: &Path, command: &str) -> Result<String> {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(socket).context(|| format!("connect {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(s, "{command}")?;
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Sends a guest's `ferrite-host: monitor` command. A `device_add` that QEMU refuses because a
/// device of the same id still exists is sent again, once a second for up to a minute: QEMU
/// finishes a `device_del` only when the guest has powered the slot off, which can come after
/// the disk has left the guest's `/sys/block` (where the guest test looks).
fn monitor_command_settled(socket: &Path, command: &str) -> String {
    let mut reply = String::new();
    for _ in 0..60 {
        reply = monitor_command(socket, command).unwrap_or_else(|e| format!("monitor error: {e}"));
        if !refused_as_duplicate(command, &reply) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    reply
}

/// Whether QEMU refused `command`, a `device_add`, because the id is still taken.
fn refused_as_duplicate(command: &str, reply: &str) -> bool {
    command.starts_with("device_add ") && reply.contains("Duplicate")
}

/// What each disk's virtqueues hold, QEMU's view (`info virtio-queue-status`) and the guest's
/// `used_event` (the used index it last asked to be interrupted at, read from its avail ring):
/// after a hang under I/O, used entries the guest never took tell a lost interrupt from a
/// request that never reached the ring (`avail` index equal to `used`).
fn virtqueue_states(socket: &Path, disks: &[Disk]) -> String {
    let queues: u32 = CPUS.parse().unwrap_or(1);
    let mut out = String::new();
    for d in disks {
        for q in 0..queues {
            let status = monitor_command(
                socket,
                &format!(
                    "info virtio-queue-status /machine/peripheral/{}/virtio-backend {q}",
                    d.id
                ),
            )
            .unwrap_or_else(|e| format!("monitor error: {e}\n"));
            out.push_str(&format!("== {} queue {q}\n{status}\n", d.id));
            if let Some((avail, at)) = avail_ring_of(&status) {
                let reply =
                    monitor_command(socket, &format!("xp /2hx {avail:#x}")).unwrap_or_default();
                let used_event =
                    monitor_command(socket, &format!("xp /1hx {at:#x}")).unwrap_or_default();
                out.push_str(&format!(
                    "avail flags, idx: {}\nused_event: {}\n",
                    reply.trim(),
                    used_event.trim()
                ));
            }
        }
    }
    out
}

/// From QEMU's `info virtio-queue-status` of a split virtqueue: the guest-physical address of
/// its avail ring and of the ring's `used_event` (after flags, idx and `num` entries, all
/// 16-bit).
fn avail_ring_of(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
    };
    let avail = u64::from_str_radix(field("avail:")?.trim_start_matches("0x"), 16).ok()?;
    let num = field("num:")?.parse::<u64>().ok()?;
    let used_event = avail.checked_add(4)?.checked_add(num.checked_mul(2)?)?;
    Some((avail, used_event))
}

/// Chooses the accelerator: `FERRITE_ACCEL=kvm|tcg` decides; otherwise KVM is probed once
/// (a guest that does not come up in time means KVM does not work here) and the answer
/// kept in the cache.
pub fn choose_accel(lab: &Lab, kernel: &Kernel, initrd: &Path) -> Result<Accel> {
    match std::env::var("FERRITE_ACCEL").ok().as_deref() {
        Some("kvm") => return Ok(Accel::Kvm),
        Some("tcg") => return Ok(Accel::Tcg),
        Some(other) if !other.is_empty() => warn(&format!(
            "FERRITE_ACCEL={other} is neither kvm nor tcg; ignored"
        )),
        _ => {}
    }
    let kvm = Path::new("/dev/kvm");
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(kvm)
        .is_err()
    {
        eprintln!("==> /dev/kvm is not usable here: guests run under TCG (software emulation)");
        return Ok(Accel::Tcg);
    }
    let memo = lab.cache.join("kvm-probe");
    if let Ok(answer) = fs::read_to_string(&memo) {
        let accel = if answer.trim() == "kvm" {
            Accel::Kvm
        } else {
            Accel::Tcg
        };
        if accel == Accel::Tcg {
            eprintln!("==> KVM did not work on this machine when probed: guests run under TCG ({} holds that answer)", memo.display());
        }
        return Ok(accel);
    }
    let boot = Boot {
        kernel,
        initrd,
        cmdline: "ferrite.mode=probe".into(),
        accel: Accel::Kvm,
        deadline: Duration::from_secs(40),
        quiet_limit: Duration::from_secs(20),
        disks: Vec::new(),
        name: "kvm-probe".into(),
        extra_args: Vec::new(),
    };
    // The guest's word is what counts, whether or not QEMU then ended cleanly.
    let _ = boot_scripted(lab, &boot);
    let results = fs::read_to_string(lab.repo.join("target/ferrite/runs/kvm-probe/results.log"))
        .unwrap_or_default();
    let works = results.contains("ferrite-probe: ok");
    fs::write(&memo, if works { "kvm\n" } else { "tcg\n" })?;
    if works {
        Ok(Accel::Kvm)
    } else {
        eprintln!("==> note: /dev/kvm exists but a KVM guest did not come up here; falling back to TCG (software emulation)");
        Ok(Accel::Tcg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_event_follows_the_avail_ring() {
        // As QEMU 7.2's monitor printed it for a hung guest's disk (queue 1 of `vdr`).
        let status =
            "/machine/peripheral/vdr/virtio-backend:\n  device_name:          virtio-blk\n  \
             queue_index:          1\n  inuse:                0\n  used_idx:             2000\n  \
             VRing:\n    num:          256\n    num_default:  256\n    align:        4096\n    \
             desc:         0x00000000072e2000\n    avail:        0x00000000072e3000\n    \
             used:         0x00000000072e3240\n";
        assert_eq!(avail_ring_of(status), Some((0x72e3000, 0x72e3204)));
        assert_eq!(avail_ring_of("monitor error: no such device\n"), None);
    }

    #[test]
    fn only_a_device_add_refused_for_its_id_is_sent_again() {
        let add = "device_add virtio-blk-pci,drive=vde,id=vde,bus=rp5,serial=ferrite-vde";
        assert!(refused_as_duplicate(
            add,
            "Error: Duplicate device ID 'vde'\r\n(qemu) "
        ));
        assert!(!refused_as_duplicate(add, "(qemu) "));
        assert!(!refused_as_duplicate(
            "device_del vde",
            "Error: Duplicate device ID 'vde'"
        ));
        assert!(!refused_as_duplicate(add, "Error: Bus 'rp5' not found"));
    }
}

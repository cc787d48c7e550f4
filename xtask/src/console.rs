//! Reading the guest's console for trouble: oops, panic, BUG, WARN, KASAN, lockdep,
//! kmemleak and Rust panics. Each report is pinned to the test that was running, from the
//! `ferrite-test: begin NAME` / `end NAME` markers the guest writes to the kernel log.

use crate::ktap::strip_console_prefix;

/// Lines that start a kernel report a test must not cause.
const REPORT_STARTS: &[&str] = &[
    "BUG:",
    "Oops:",
    "Oops ",
    "kernel BUG at",
    "Kernel panic",
    "WARNING:",
    "UBSAN:",
    "general protection fault",
    "Unable to handle kernel",
    "INFO: task ",
    "INFO: rcu_",
    "rcu: INFO:",
    "unreferenced object",
    "panicked at",
    "rust_kernel: panicked",
];

/// Substrings that mark a report wherever they appear in the line.
const REPORT_CONTAINS: &[&str] = &["new suspected memory leaks", "] panicked at ", "KASAN:"];

pub const BEGIN_MARK: &str = "ferrite-test: begin ";
pub const END_MARK: &str = "ferrite-test: end ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The test that was running, or `boot` before the first one.
    pub during: String,
    /// The line that starts the report, with the faulting function when the report names
    /// one (`RIP: ...`), so a one-line summary says where it happened.
    pub headline: String,
    /// The report with some lines of context.
    pub excerpt: String,
}

pub fn is_report_line(line: &str) -> bool {
    let text = strip_console_prefix(line).trim_start();
    REPORT_STARTS.iter().any(|p| text.starts_with(p))
        || REPORT_CONTAINS.iter().any(|p| line.contains(p))
}

/// Finds every report in a console log; lines of one report (up to the next blank gap of
/// reports) are grouped, so a KASAN report with its many lines counts once.
pub fn scan(log: &str) -> Vec<Report> {
    let lines: Vec<&str> = log.lines().collect();
    let mut during = "boot".to_owned();
    let mut reports: Vec<Report> = Vec::new();
    let mut last_report_line: Option<usize> = None;
    for (i, raw) in lines.iter().enumerate() {
        let text = strip_console_prefix(raw);
        if let Some(pos) = text.find(BEGIN_MARK) {
            during = text[pos + BEGIN_MARK.len()..].trim().to_owned();
            continue;
        }
        if let Some(pos) = text.find(END_MARK) {
            during = format!("after {}", text[pos + END_MARK.len()..].trim());
            continue;
        }
        if !is_report_line(raw) {
            continue;
        }
        // Headlines within a few lines of the previous one belong to the same report
        // (e.g. "BUG: KASAN: ..." right after the "=====" banner, or a WARNING's follow-ups).
        if last_report_line.is_some_and(|l| i <= l + 40)
            && reports.last().is_some_and(|r| r.during == during)
        {
            last_report_line = Some(i);
            continue;
        }
        last_report_line = Some(i);
        let end = (i + 30).min(lines.len());
        let start = i.saturating_sub(2);
        let mut headline = text.trim().to_owned();
        if let Some(rip) = lines[i..end].iter().find_map(|l| {
            let t = strip_console_prefix(l);
            t.find("RIP: ").map(|p| t[p + 5..].trim().to_owned())
        }) {
            headline = format!("{headline} (RIP {rip})");
        }
        reports.push(Report {
            during: during.clone(),
            headline,
            excerpt: lines[start..end].join("\n"),
        });
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_log_has_no_reports() {
        let log = "[0.1] Linux version 7.3.4\n[0.2] ferrite-test: begin rnull/io\n[0.3] ok 1 x\n[0.4] ferrite-test: end rnull/io\n";
        assert!(scan(log).is_empty());
    }

    #[test]
    fn report_is_pinned_to_the_running_test() {
        let log = "\
[0.1] boot message
[0.2] ferrite-test: begin rnull/io
[0.3] ==================================================================
[0.4] BUG: KASAN: slab-use-after-free in foo+0x1/0x2
[0.5] Read of size 8 at addr ffff
[0.6] Call Trace:
[0.7] ferrite-test: end rnull/io
[0.8] ferrite-test: begin null_blk/io
[0.9] WARNING: CPU: 0 PID: 1 at drivers/x.c:1 bar
";
        let r = scan(log);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].during, "rnull/io");
        assert!(r[0].headline.starts_with("BUG: KASAN"));
        assert!(r[0].excerpt.contains("Read of size 8"));
        assert_eq!(r[1].during, "null_blk/io");
    }

    #[test]
    fn recognises_each_kind_of_report() {
        for line in [
            "[1.0] Oops: general protection fault, probably for non-canonical address",
            "[1.0] Kernel panic - not syncing: Fatal exception",
            "[1.0] kernel BUG at mm/slub.c:100!",
            "[1.0] WARNING: possible circular locking dependency detected",
            "[1.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "unreferenced object 0xffff888 (size 64):",
            "[1.0] rust_kernel: panicked at rust/kernel/lib.rs:1:1:",
            "[1.0] UBSAN: array-index-out-of-bounds in x.c",
        ] {
            assert!(is_report_line(line), "{line}");
        }
        assert!(!is_report_line(
            "[1.0] virtio_blk virtio0: [vda] 2048 512-byte logical blocks"
        ));
        assert!(!is_report_line("[1.0] KTAP version 1"));
    }

    #[test]
    fn headline_names_the_faulting_function() {
        let log = "\
[65.5] Oops: int3: 0000 [#1] SMP KASAN
[65.5] CPU: 1 UID: 0 PID: 0 Comm: swapper/1
[65.5] RIP: 0010:__do_trace_sched_wakeup+0xac/0xd0
[65.5] Call Trace:
";
        let r = scan(log);
        assert_eq!(
            r[0].headline,
            "Oops: int3: 0000 [#1] SMP KASAN (RIP 0010:__do_trace_sched_wakeup+0xac/0xd0)"
        );
    }

    #[test]
    fn boot_reports_are_attributed_to_boot() {
        let r = scan("[0.1] BUG: sleeping function called from invalid context\n");
        assert_eq!(r[0].during, "boot");
    }
}

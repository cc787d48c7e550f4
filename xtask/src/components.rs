//! Ferrite's components as the lab knows them: what `cargo xtask test COMPONENT` runs and
//! what `cargo xtask bench SUITE` compares. Adding a component: put its kernel code under
//! `linux/` (and any Kconfig/Makefile edits in `lab/patches/`), its config options in
//! `lab/configs/components/NAME.config`, its guest tests in `lab/guest/tests/NAME/`, and an
//! entry here.

pub struct Component {
    pub name: &'static str,
    pub about: &'static str,
    /// Runs `cargo test --workspace` on the host.
    pub host_tests: bool,
    /// KUnit suites (a `kunit.filter_glob` pattern) that belong to the component.
    pub kunit: Option<&'static str>,
    /// Has guest tests in `lab/guest/tests/NAME/`.
    pub guest_tests: bool,
}

pub const COMPONENTS: &[Component] = &[
    Component {
        name: "host",
        about: "host-side unit tests of the lab and of Ferrite's userspace crates (cargo test)",
        host_tests: true,
        kunit: None,
        guest_tests: false,
    },
    Component {
        name: "kunit",
        about: "every built-in KUnit suite, the Rust `kernel` crate's tests and doctests included",
        host_tests: false,
        kunit: Some("*"),
        guest_tests: false,
    },
    Component {
        name: "ferfs",
        about: "ferfs on the guest's virtio disk: tools, FUSE mount (POSIX, stress-ng, fio, dbench), btrfs comparison",
        host_tests: false,
        kunit: None,
        guest_tests: true,
    },
    Component {
        name: "lab",
        about: "the guest environment: debugging options, virtio disk and NIC, modules",
        host_tests: false,
        kunit: None,
        guest_tests: true,
    },
    Component {
        name: "landlock_rust",
        about: "Landlock in Rust: the policy engine (KUnit) and the three system calls in the guest",
        host_tests: false,
        kunit: Some("landlock_rust*"),
        guest_tests: true,
    },
    Component {
        name: "rnull",
        about: "the Rust null block driver and the C null_blk, held to the same checks",
        host_tests: false,
        kunit: None,
        guest_tests: true,
    },
    Component {
        name: "rvirtio_blk",
        about: "kernel::virtio and the Rust virtio block driver, held to the C virtio_blk's checks",
        host_tests: false,
        kunit: Some("rust_virtio*"),
        guest_tests: true,
    },
    Component {
        name: "landlock",
        about: "Landlock: the kernel's selftests, the sandboxer, hostile input; C, and Rust when merged",
        host_tests: false,
        kunit: Some("landlock*"),
        guest_tests: true,
    },
];

pub fn find(name: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.name == name)
}

/// A benchmark suite: a guest script `lab/guest/bench/NAME.sh` and the modules and
/// sources of its two sides, for the size and line-count comparison.
pub struct Suite {
    pub name: &'static str,
    pub about: &'static str,
    pub rust_module: &'static str,
    pub c_module: &'static str,
    /// Source files (relative to the build tree) of each side.
    pub rust_sources: &'static [&'static str],
    pub c_sources: &'static [&'static str],
    /// Whole-boot deadline in seconds for the default number of pairs (for a suite whose
    /// sides are kernels: of one boot).
    pub deadline_secs: u64,
    /// The two sides are two kernels (a kernel variant), not two modules of one: the host
    /// alternates boots, one batch of every case a boot, instead of alternating in the guest.
    pub kernels: bool,
    /// The disks the guest gets.
    pub disks: BenchDisks,
    /// Pairs, and milliseconds a run, unless `FERRITE_PAIRS` / `FERRITE_RUNTIME` (seconds) say
    /// otherwise.
    pub pairs: u32,
    pub runtime_ms: u32,
    /// How the runs of a pair may be arranged: a name the guest script knows
    /// (`ferrite.arrangement`, from `FERRITE_ARRANGEMENT`) and what it means, for the report.
    /// The first is the default.
    pub arrangements: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchDisks {
    /// The test disks (`standard_disks`).
    Standard,
    /// Two identical sets of virtio disks for the virtio block drivers, each a
    /// `ferrite-null-N` on QEMU's `null-co` backend (no storage behind it: the drivers' and
    /// the transport's overhead) and a `ferrite-raw-N` on a raw image file.
    VirtioBench,
}

pub const SUITES: &[Suite] = &[
    Suite {
        name: "rnull",
        about: "rnull (Rust) against null_blk (C): fio on the raw block device",
        rust_module: "drivers/block/rnull/rnull_mod.ko",
        c_module: "drivers/block/null_blk/null_blk.ko",
        rust_sources: &["drivers/block/rnull/"],
        c_sources: &["drivers/block/null_blk/"],
        deadline_secs: 3600,
        disks: BenchDisks::Standard,
        kernels: false,
        pairs: 5,
        runtime_ms: 3000,
        arrangements: &[(
            "alternate",
            "fio runs after a 1 s ramp, a freshly loaded module for every run",
        )],
    },
    Suite {
        name: "virtio-blk",
        about: "rvirtio_blk (Rust) against virtio_blk (C) on identical QEMU virtio-blk devices: \
                fio direct I/O on a null-co backend and on a raw image",
        rust_module: "drivers/block/rvirtio_blk/rvirtio_blk.ko",
        c_module: "drivers/block/virtio_blk.ko",
        rust_sources: &["drivers/block/rvirtio_blk/"],
        c_sources: &["drivers/block/virtio_blk.c"],
        deadline_secs: 3 * 3600,
        disks: BenchDisks::VirtioBench,
        kernels: false,
        pairs: 20,
        runtime_ms: 500,
        arrangements: &[
            (
                "together",
                "fio runs after a 0.2 s ramp, both drivers bound at once (one to each of two \
                 identical disk sets, swapped halfway), the two runs of a pair at the same time, \
                 each side pinned to its own vCPU (Rust on CPU 0 in odd pairs, CPU 1 in even \
                 ones), so that the host's changes of speed fall on both",
            ),
            (
                "alternate",
                "fio runs after a 0.2 s ramp, both drivers bound at once (one to each of two \
                 identical disk sets, swapped halfway), a case one fio invocation alternating \
                 between them run by run (threads, one run at a time)",
            ),
        ],
    },
    Suite {
        name: "landlock",
        about: "the Rust Landlock against the C one: open/stat in deep sandboxes, the selftests' fs_bench",
        rust_module: "",
        c_module: "",
        rust_sources: &["security/landlock_rust/"],
        c_sources: &["security/landlock/"],
        deadline_secs: 900,
        disks: BenchDisks::Standard,
        kernels: true,
        pairs: 5,
        runtime_ms: 3000,
        arrangements: &[("alternate", "runs, one boot of each kernel a pair")],
    },
];

pub fn find_suite(name: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_component_with_guest_tests_has_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/guest/tests");
        for c in COMPONENTS.iter().filter(|c| c.guest_tests) {
            let dir = root.join(c.name);
            let scripts = std::fs::read_dir(&dir).map(|rd| rd.count()).unwrap_or(0);
            assert!(
                scripts > 0,
                "{} has no guest tests in {}",
                c.name,
                dir.display()
            );
        }
    }

    #[test]
    fn every_suite_has_a_guest_script() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/guest/bench");
        for s in SUITES {
            assert!(
                root.join(format!("{}.sh", s.name)).is_file(),
                "{} has no script",
                s.name
            );
        }
    }
}

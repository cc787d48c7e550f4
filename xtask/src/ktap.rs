//! A KTAP/TAP reader for KUnit's console output and the guest tests' results.
//!
//! Only leaf results count as tests: a result line that closes a subtest (its children were
//! reported before it) is a summary. Lines that are not KTAP (other kernel messages
//! interleaved on the console) are ignored, and a `[ 1.23]` printk timestamp is stripped.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// `suite.case` (or deeper for parameterised tests).
    pub name: String,
    pub outcome: Outcome,
    /// Free text after `#`, e.g. a skip reason.
    pub note: String,
}

/// Strips a printk timestamp and the caller-id prefix the console may add.
pub fn strip_console_prefix(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let stamp = &rest[..end];
            if stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                let rest = &rest[end + 1..];
                return rest.strip_prefix(' ').unwrap_or(rest);
            }
        }
    }
    line
}

struct Level {
    /// Results at this level since the parent's last result, pending a name prefix.
    pending: Vec<TestResult>,
    /// Whether a deeper level reported results since this level's last result.
    has_children: bool,
}

/// Parses the results out of a log that may contain several KTAP documents.
pub fn parse(log: &str) -> Vec<TestResult> {
    let mut levels: Vec<Level> = Vec::new();
    let mut done = Vec::new();
    for raw in log.lines() {
        let line = strip_console_prefix(raw);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let depth = indent / 4;
        let text = line.trim();
        let Some(result) = parse_result(text) else {
            continue;
        };
        while levels.len() <= depth {
            levels.push(Level {
                pending: Vec::new(),
                has_children: false,
            });
        }
        let had_children = levels[depth].has_children;
        levels[depth].has_children = false;
        let mut entries = if had_children && depth + 1 < levels.len() {
            // A summary: its children become `name.child`.
            let children = std::mem::take(&mut levels[depth + 1].pending);
            for l in levels.iter_mut().skip(depth + 1) {
                l.pending.clear();
                l.has_children = false;
            }
            children
                .into_iter()
                .map(|mut c| {
                    c.name = format!("{}.{}", result.name, c.name);
                    c
                })
                .collect()
        } else {
            vec![result]
        };
        if depth == 0 {
            done.append(&mut entries);
        } else {
            levels[depth].pending.append(&mut entries);
            levels[depth - 1].has_children = true;
        }
    }
    // Results whose parent never closed (a crash mid-suite) still count.
    for level in levels.into_iter().rev() {
        done.extend(level.pending);
    }
    done
}

/// `ok 3 name # SKIP why` / `not ok 1 - name`.
fn parse_result(text: &str) -> Option<TestResult> {
    let (failed, rest) = if let Some(r) = text.strip_prefix("not ok ") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("ok ") {
        (false, r)
    } else {
        return None;
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, note) = match rest.split_once('#') {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (rest.trim(), ""),
    };
    let skipped = note.len() >= 4 && note[..4].eq_ignore_ascii_case("skip");
    let outcome = match (failed, skipped) {
        (_, true) => Outcome::Skip,
        (true, false) => Outcome::Fail,
        (false, false) => Outcome::Pass,
    };
    Some(TestResult {
        name: name.to_owned(),
        outcome,
        note: note.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUNIT: &str = "\
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: rust_kernel_str
[    1.000004]     # speed: normal
[    1.000005]     1..2
[    1.000006]     ok 1 test_cstr
[    1.000007] random unrelated kernel message
[    1.000008]     not ok 2 test_fmt
[    1.000009] # rust_kernel_str: pass:1 fail:1 skip:0 total:2
[    1.000010] not ok 1 rust_kernel_str
[    1.000011]     KTAP version 1
[    1.000012]     # Subtest: param_suite
[    1.000013]     1..1
[    1.000014]         KTAP version 1
[    1.000015]         # Subtest: param_case
[    1.000016]         ok 1 one
[    1.000017]         ok 2 two # SKIP not here
[    1.000018]     ok 1 param_case
[    1.000019] ok 2 param_suite
";

    #[test]
    fn counts_leaves_with_their_suite_names() {
        let r = parse(KUNIT);
        let names: Vec<&str> = r.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rust_kernel_str.test_cstr",
                "rust_kernel_str.test_fmt",
                "param_suite.param_case.one",
                "param_suite.param_case.two"
            ]
        );
        assert_eq!(r[1].outcome, Outcome::Fail);
        assert_eq!(r[3].outcome, Outcome::Skip);
        assert_eq!(r[3].note, "SKIP not here");
    }

    #[test]
    fn flat_tap_counts_every_line() {
        let r = parse("1..3\nok 1 - a\nnot ok 2 - b\nok 3 c # skip nope\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].name, "a");
        assert_eq!(r[1].outcome, Outcome::Fail);
        assert_eq!(r[2].outcome, Outcome::Skip);
    }

    #[test]
    fn unclosed_suite_still_reports_its_cases() {
        let r =
            parse("KTAP version 1\n1..1\n    # Subtest: s\n    1..3\n    ok 1 a\n    not ok 2 b\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].outcome, Outcome::Fail);
    }

    #[test]
    fn ignores_lines_that_only_look_similar() {
        assert!(parse("okay 1 x\nok x y\nnot okay\n").is_empty());
    }

    #[test]
    fn strips_timestamps_only() {
        assert_eq!(strip_console_prefix("[   12.5] ok 1 a"), "ok 1 a");
        assert_eq!(strip_console_prefix("[not a stamp] x"), "[not a stamp] x");
    }
}

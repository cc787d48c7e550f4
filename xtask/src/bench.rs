//! The benchmark harness: reads the `BENCH` lines a guest suite prints (one fio JSON per
//! run, Rust and C alternating in pairs), and reports median/min/max of each side and the
//! median of the per-pair ratio, oriented so that higher is better for Rust. Writes
//! `SUITE.json`, `SUITE.md` and `SUITE.svg`.

use crate::util::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Rust,
    C,
}

/// One figure of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub case: String,
    pub metric: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub side: Side,
    pub pair: u32,
    pub value: f64,
}

impl Sample {
    /// One figure (`metric` in `unit`, `higher` when more is better) of run `side`/`pair`.
    fn of_run(
        case: &str,
        side: Side,
        pair: u32,
        metric: &'static str,
        unit: &'static str,
        higher: bool,
        value: f64,
    ) -> Sample {
        Sample {
            case: case.to_string(),
            metric,
            unit,
            higher_is_better: higher,
            side,
            pair,
            value,
        }
    }
}

/// Parses `BENCH case=… side=rust|c pair=N {fio json}` lines (one run, its first job), and
/// `BENCH case=… {fio json}` lines whose jobs (or groups, with `group_reporting`) are runs
/// named `SIDE.PAIR` (one fio invocation alternating between the two sides).
pub fn parse_fio_lines(text: &str) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(err) = line.strip_prefix("BENCH-ERROR ") {
            return Err(Error::new(format!("the benchmark guest reported: {err}")));
        }
        let Some(rest) = line.strip_prefix("BENCH ") else {
            continue;
        };
        let mut fields = BTreeMap::new();
        let mut rest = rest;
        while let Some((kv, tail)) = rest.split_once(' ') {
            let Some((k, v)) = kv.split_once('=') else {
                break;
            };
            fields.insert(k, v);
            rest = tail;
        }
        let Some(case) = fields.get("case").copied() else {
            return Err(Error::new(format!("malformed benchmark line: {line}")));
        };
        let fio: Value = serde_json::from_str(rest)
            .map_err(|e| Error::new(format!("fio output for {case} is not JSON: {e}")))?;
        let jobs = fio
            .get("jobs")
            .and_then(Value::as_array)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| Error::new(format!("fio JSON for {case} has no jobs")))?;
        let runs: Vec<(Side, u32, &Value)> = if fields.contains_key("side") {
            let (_, side, pair) = run_key(&fields, line)?;
            vec![(side, pair, &jobs[0])]
        } else {
            jobs.iter()
                .map(|job| {
                    let name = job.get("jobname").and_then(Value::as_str).unwrap_or("");
                    let (side, pair) = name.split_once('.').ok_or_else(|| {
                        Error::new(format!("fio job `{name}` of {case} is not named SIDE.PAIR"))
                    })?;
                    let (side, pair) = (parse_side(side, line)?, parse_pair(pair, line)?);
                    Ok((side, pair, job))
                })
                .collect::<Result<_>>()?
        };
        for (side, pair, job) in runs {
            for (metric, unit, higher, value) in fio_figures(job, case)? {
                samples.push(Sample::of_run(
                    case, side, pair, metric, unit, higher, value,
                ));
            }
        }
    }
    Ok(samples)
}

fn parse_side(side: &str, line: &str) -> Result<Side> {
    match side {
        "rust" => Ok(Side::Rust),
        "c" => Ok(Side::C),
        other => Err(Error::new(format!("unknown side `{other}` in: {line}"))),
    }
}

fn parse_pair(pair: &str, line: &str) -> Result<u32> {
    pair.parse()
        .map_err(|_| Error::new(format!("bad pair in: {line}")))
}

/// The `case`, `side` and `pair` fields every benchmark line carries.
fn run_key<'a>(fields: &BTreeMap<&str, &'a str>, line: &str) -> Result<(&'a str, Side, u32)> {
    let (Some(case), Some(side), Some(pair)) =
        (fields.get("case"), fields.get("side"), fields.get("pair"))
    else {
        return Err(Error::new(format!("malformed benchmark line: {line}")));
    };
    Ok((case, parse_side(side, line)?, parse_pair(pair, line)?))
}

/// Parses `BENCH-VALUE case=… side=rust|c pair=N FIGURE=value…` lines (benchmarks that are
/// not fio: one value per known figure).
pub fn parse_value_lines(text: &str) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(err) = line.strip_prefix("BENCH-ERROR ") {
            return Err(Error::new(format!("the benchmark guest reported: {err}")));
        }
        let Some(rest) = line.strip_prefix("BENCH-VALUE ") else {
            continue;
        };
        let fields: BTreeMap<&str, &str> = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let (case, side, pair) = run_key(&fields, line)?;
        for (key, metric, unit, higher) in [
            ("ops_per_s", "throughput", "ops/s", true),
            ("ns_per_op", "time per call", "ns", false),
            ("sys_us_per_op", "system time per call", "µs", false),
        ] {
            if let Some(v) = fields.get(key) {
                let value: f64 = v
                    .parse()
                    .map_err(|_| Error::new(format!("bad {key} in: {line}")))?;
                samples.push(Sample::of_run(
                    case, side, pair, metric, unit, higher, value,
                ));
            }
        }
    }
    Ok(samples)
}

/// IOPS, bandwidth and mean completion latency of a fio job's active direction(s).
fn fio_figures(job: &Value, case: &str) -> Result<Vec<(&'static str, &'static str, bool, f64)>> {
    if job.get("error").and_then(Value::as_i64).unwrap_or(0) != 0 {
        return Err(Error::new(format!(
            "fio reported error {} for a run of {case}",
            job["error"]
        )));
    }
    let mut iops = 0.0;
    let mut bw_kib = 0.0;
    let mut lat_weighted = 0.0;
    for dir in ["read", "write"] {
        let d = &job[dir];
        let dir_iops = d["iops"].as_f64().unwrap_or(0.0);
        if dir_iops <= 0.0 {
            continue;
        }
        iops += dir_iops;
        bw_kib += d["bw"].as_f64().unwrap_or(0.0);
        lat_weighted += d["clat_ns"]["mean"].as_f64().unwrap_or(0.0) * dir_iops;
    }
    if iops <= 0.0 {
        return Err(Error::new(format!("a run of {case} did no I/O")));
    }
    Ok(vec![
        ("iops", "IOPS", true, iops),
        ("bandwidth", "MiB/s", true, bw_kib / 1024.0),
        ("latency", "µs", false, lat_weighted / iops / 1000.0),
    ])
}

pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Summary of one (case, metric).
#[derive(Debug)]
pub struct Row {
    pub case: String,
    pub metric: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub rust: Vec<f64>,
    pub c: Vec<f64>,
    /// Per-pair ratio, > 1 means Rust did better.
    pub ratios: Vec<f64>,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        median(&self.ratios)
    }

    /// A 95 % confidence interval of the median ratio (`median_ci`).
    pub fn ratio_ci(&self) -> (f64, f64) {
        median_ci(&self.ratios)
    }
}

/// A distribution-free confidence interval of at least 95 % for the median of the population
/// `values` were drawn from: the k-th smallest and k-th largest value, k the largest for which
/// fewer than k of n values fall below the median with probability at most 2.5 %
/// (Binomial(n, 1/2)). Says whether a median ratio is told apart from 1.00 by this many pairs,
/// without assuming how the noise is distributed. NaN for fewer than 6 values (no such k).
pub fn median_ci(values: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    // P(X <= i) for X ~ Binomial(n, 1/2), term by term in logarithms (no underflow).
    let mut ln_p = -(n as f64) * std::f64::consts::LN_2;
    let mut cdf = 0.0;
    let mut k = 0;
    for i in 0..n {
        cdf += ln_p.exp();
        if cdf > 0.025 {
            break;
        }
        // P(X <= i) <= 2.5 %: the (i+1)-th smallest value bounds the median from below.
        k = i + 1;
        ln_p += ((n - i) as f64 / (i + 1) as f64).ln();
    }
    if k == 0 {
        return (f64::NAN, f64::NAN);
    }
    (v[k - 1], v[n - k])
}

pub fn summarise(samples: &[Sample]) -> Vec<Row> {
    let mut order: Vec<(String, &'static str)> = Vec::new();
    for s in samples {
        if !order.iter().any(|(c, m)| *c == s.case && *m == s.metric) {
            order.push((s.case.clone(), s.metric));
        }
    }
    order
        .into_iter()
        .map(|(case, metric)| {
            let of = |side| -> BTreeMap<u32, f64> {
                samples
                    .iter()
                    .filter(|s| s.case == case && s.metric == metric && s.side == side)
                    .map(|s| (s.pair, s.value))
                    .collect()
            };
            let (rust, c) = (of(Side::Rust), of(Side::C));
            let any = samples
                .iter()
                .find(|s| s.case == case && s.metric == metric)
                .map(|s| (s.unit, s.higher_is_better));
            let (unit, higher) = any.unwrap_or(("", true));
            let ratios = rust
                .iter()
                .filter_map(|(pair, r)| c.get(pair).map(|c| if higher { r / c } else { c / r }))
                .collect();
            Row {
                case,
                metric,
                unit,
                higher_is_better: higher,
                rust: rust.into_values().collect(),
                c: c.into_values().collect(),
                ratios,
            }
        })
        .collect()
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Facts about the two sides besides speed, where smaller is better (size, lines).
pub struct Footprint {
    pub case: String,
    pub metric: &'static str,
    pub unit: &'static str,
    pub rust: f64,
    pub c: f64,
}

/// The array of `{case, metric, unit, rust, c, ratio}` (medians) with ranges and raw
/// samples; footprint entries follow with their single values.
pub fn to_json(rows: &[Row], footprint: &[Footprint]) -> Value {
    let mut out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (lo, hi) = r.ratio_ci();
            let ci = [lo, hi];
            json!({
                "case": r.case,
                "metric": r.metric,
                "unit": r.unit,
                "higher_is_better": r.higher_is_better,
                "rust": median(&r.rust),
                "c": median(&r.c),
                "ratio": r.ratio(),
                "rust_min": min(&r.rust), "rust_max": max(&r.rust),
                "c_min": min(&r.c), "c_max": max(&r.c),
                "ratio_min": min(&r.ratios), "ratio_max": max(&r.ratios),
                "ratio_ci95": ci,
                "samples": {"rust": r.rust, "c": r.c, "ratio": r.ratios},
            })
        })
        .collect();
    out.extend(footprint.iter().map(|f| {
        json!({
            "case": f.case, "metric": f.metric, "unit": f.unit, "higher_is_better": false,
            "rust": f.rust, "c": f.c, "ratio": f.c / f.rust,
        })
    }));
    Value::Array(out)
}

/// A ratio to three places; a case measured on one side only has none ("–").
fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "–".into()
    }
}

fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn to_markdown(suite: &str, rows: &[Row], footprint: &[Footprint], context: &str) -> String {
    let mut md = format!("# Benchmark `{suite}`: Rust against C\n\n{context}\n\n");
    md.push_str("Ratio: the median of the per-pair ratios, oriented so that **> 1.00 means Rust did better** ");
    md.push_str("(Rust/C for throughput, C/Rust for latency). Median [min–max] over the runs; ");
    md.push_str("95 % CI: a distribution-free confidence interval of the median ratio (order ");
    md.push_str("statistics), \"–\" with fewer than 6 pairs.\n\n");
    md.push_str("| case | metric | Rust | C | ratio | 95 % CI | ratio range |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (lo, hi) = r.ratio_ci();
        let _ = writeln!(
            md,
            "| {} | {} ({}) | {} [{}–{}] | {} [{}–{}] | **{}** | {}–{} | {}–{} |",
            r.case,
            r.metric,
            r.unit,
            fmt_value(median(&r.rust)),
            fmt_value(min(&r.rust)),
            fmt_value(max(&r.rust)),
            fmt_value(median(&r.c)),
            fmt_value(min(&r.c)),
            fmt_value(max(&r.c)),
            fmt_ratio(r.ratio()),
            fmt_ratio(lo),
            fmt_ratio(hi),
            fmt_ratio(min(&r.ratios)),
            fmt_ratio(max(&r.ratios)),
        );
    }
    if !footprint.is_empty() {
        md.push_str("\n| footprint | Rust | C | C/Rust |\n|---|---|---|---|\n");
        for f in footprint {
            let _ = writeln!(
                md,
                "| {} — {} ({}) | {} | {} | {} |",
                f.case,
                f.metric,
                f.unit,
                if f.rust.is_finite() {
                    f.rust.to_string()
                } else {
                    "absent".into()
                },
                f.c,
                if f.rust.is_finite() {
                    format!("{:.2}", f.c / f.rust)
                } else {
                    "–".into()
                }
            );
        }
    }
    md
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar per (case, metric): the median ratio, its range as a whisker, and the
/// 1.00 line — readable at a glance.
pub fn to_svg(suite: &str, rows: &[Row]) -> String {
    // Bandwidth is IOPS times a fixed block size: the same ratio, so it is left out here.
    // A case measured on one side only has no ratio to draw (the Markdown lists it).
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.metric != "bandwidth" && !r.ratios.is_empty())
        .collect();
    let bar_h = 18.0;
    let gap = 8.0;
    let left = 260.0;
    let width = 760.0;
    let plot_w = width - left - 70.0;
    let top = 50.0;
    let height = top + rows.len() as f64 * (bar_h + gap) + 40.0;
    let hi = rows
        .iter()
        .flat_map(|r| r.ratios.iter().copied())
        .filter(|x| x.is_finite())
        .fold(1.2_f64, f64::max);
    let scale_max = (hi * 10.0).ceil() / 10.0;
    let x = |ratio: f64| left + (ratio / scale_max).clamp(0.0, 1.0) * plot_w;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{} — Rust/C, &gt; 1 = Rust better (bar: median; thick: 95 % CI; thin: range)</text>\n",
        xml_escape(suite)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let ratio = r.ratio();
        let colour = if ratio >= 1.0 { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{colour}\" opacity=\"0.8\"/>\n\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
             <text x=\"{:.1}\" y=\"{}\" text-anchor=\"end\">{ratio:.3}</text>",
            left - 8.0,
            y + 13.0,
            xml_escape(&r.case),
            r.metric,
            x(ratio) - left,
            x(min(&r.ratios)),
            x(max(&r.ratios)),
            y + bar_h / 2.0,
            y + bar_h / 2.0,
            width - 8.0,
            y + 13.0,
        );
        let (lo, hi) = r.ratio_ci();
        if lo.is_finite() && hi.is_finite() {
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\" \
                 stroke-width=\"5\" opacity=\"0.45\"/>",
                x(lo),
                x(hi),
                y + bar_h / 2.0,
                y + bar_h / 2.0,
            );
        }
    }
    let one = x(1.0);
    let bottom = top + rows.len() as f64 * (bar_h + gap);
    let _ = write!(
        s,
        "<line x1=\"{one:.1}\" x2=\"{one:.1}\" y1=\"{}\" y2=\"{bottom}\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{one:.1}\" y=\"{}\" text-anchor=\"middle\">1.00</text>\n\
         <text x=\"{left}\" y=\"{}\">0</text><text x=\"{:.1}\" y=\"{}\" text-anchor=\"end\">{scale_max:.1}</text>\n</svg>\n",
        top - 8.0,
        bottom + 16.0,
        bottom + 16.0,
        left + plot_w,
        bottom + 16.0,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_lines_give_samples() {
        let text = "BENCH-META x\nBENCH-VALUE case=open side=c pair=2 ops_per_s=1000.5 ns_per_op=999.5 ops=64\n\
                    BENCH-VALUE case=fsb side=rust pair=1 sys_us_per_op=12.5\nBENCH-DONE\n";
        let s = parse_value_lines(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].metric, "throughput");
        assert_eq!(s[0].side, Side::C);
        assert_eq!(s[0].pair, 2);
        assert!(!s[1].higher_is_better);
        assert_eq!(s[2].side, Side::Rust);
        assert!(parse_value_lines("BENCH-ERROR boom").is_err());
    }

    fn fio(read_iops: f64, write_iops: f64) -> String {
        format!(
            "{{\"jobs\":[{{\"error\":0,\"read\":{{\"iops\":{read_iops},\"bw\":{},\"clat_ns\":{{\"mean\":2000.0}}}},\
             \"write\":{{\"iops\":{write_iops},\"bw\":0,\"clat_ns\":{{\"mean\":0}}}}}}]}}",
            read_iops * 4.0
        )
    }

    #[test]
    fn parses_alternating_jobs_of_one_invocation() {
        let job = |name: &str, iops: f64| {
            format!(
                "{{\"jobname\":\"{name}\",\"error\":0,\"read\":{{\"iops\":{iops},\"bw\":4,\
                 \"clat_ns\":{{\"mean\":1000.0}}}},\"write\":{{\"iops\":0}}}}"
            )
        };
        let text = format!(
            "BENCH case=rr {{\"jobs\":[{},{},{},{}]}}\n",
            job("rust.1", 120.0),
            job("c.1", 100.0),
            job("c.2", 100.0),
            job("rust.2", 80.0)
        );
        let samples = parse_fio_lines(&text).unwrap();
        assert_eq!(samples.len(), 12);
        let rows = summarise(&samples);
        let iops = rows.iter().find(|r| r.metric == "iops").unwrap();
        assert_eq!(iops.ratios, vec![1.2, 0.8]);
        assert_eq!(iops.rust, vec![120.0, 80.0]);
        for bad in ["rust1", "go.1", "c.x"] {
            let text = format!("BENCH case=rr {{\"jobs\":[{}]}}\n", job(bad, 1.0));
            assert!(parse_fio_lines(&text).is_err(), "{bad} accepted");
        }
        assert!(parse_fio_lines("BENCH case=rr {\"jobs\":[]}").is_err());
    }

    #[test]
    fn median_confidence_interval_from_order_statistics() {
        // n = 20: P(X <= 5) = 2.07 %, P(X <= 6) = 5.77 %, so the 6th smallest and 6th largest.
        let v: Vec<f64> = (1..=20).map(f64::from).rev().collect();
        assert_eq!(median_ci(&v), (6.0, 15.0));
        // n = 6: only the extremes (P(X <= 0) = 1.6 %).
        assert_eq!(median_ci(&[3.0, 1.0, 2.0, 6.0, 5.0, 4.0]), (1.0, 6.0));
        assert!(median_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]).0.is_nan());
        // Large n stays finite and tightens around the middle.
        let big: Vec<f64> = (0..2000).map(f64::from).collect();
        let (lo, hi) = median_ci(&big);
        assert!(
            lo > 940.0 && lo < 1000.0 && hi > 999.0 && hi < 1060.0,
            "{lo} {hi}"
        );
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn parses_runs_and_orients_ratios() {
        let text = format!(
            "BENCH-META suite=x\nBENCH case=rr side=rust pair=1 {}\nBENCH case=rr side=c pair=1 {}\n\
             BENCH case=rr side=rust pair=2 {}\nBENCH case=rr side=c pair=2 {}\n",
            fio(110.0, 0.0),
            fio(100.0, 0.0),
            fio(90.0, 0.0),
            fio(100.0, 0.0)
        );
        let samples = parse_fio_lines(&text).unwrap();
        assert_eq!(samples.len(), 12);
        let rows = summarise(&samples);
        let iops = rows.iter().find(|r| r.metric == "iops").unwrap();
        assert_eq!(iops.ratios, vec![1.1, 0.9]);
        assert!((iops.ratio() - 1.0).abs() < 1e-9);
        // Equal latencies: the ratio is C/Rust, so 1.0 either way.
        let lat = rows.iter().find(|r| r.metric == "latency").unwrap();
        assert!(!lat.higher_is_better);
        assert!((lat.ratio() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn reports_guest_errors_and_garbage() {
        assert!(parse_fio_lines("BENCH-ERROR cannot load rnull\n").is_err());
        assert!(parse_fio_lines("BENCH case=a side=rust pair=1 {not json\n").is_err());
        assert!(parse_fio_lines("BENCH case=a side=go pair=1 {}\n").is_err());
        assert!(parse_fio_lines(&format!(
            "BENCH case=a side=rust pair=1 {}\n",
            fio(0.0, 0.0)
        ))
        .is_err());
    }

    #[test]
    fn outputs_name_every_case() {
        let text = format!(
            "BENCH case=seq side=rust pair=1 {}\nBENCH case=seq side=c pair=1 {}\n",
            fio(5.0, 0.0),
            fio(4.0, 0.0)
        );
        let rows = summarise(&parse_fio_lines(&text).unwrap());
        let md = to_markdown("t", &rows, &[], "ctx");
        assert!(
            md.contains("| seq | iops (IOPS) | 5.00 [5.00–5.00] | 4.00 [4.00–4.00] | **1.250**")
        );
        let svg = to_svg("t", &rows);
        assert!(
            svg.starts_with("<svg")
                && svg.contains("seq iops")
                && svg.trim_end().ends_with("</svg>")
        );
        let fp = [Footprint {
            case: "m.ko".into(),
            metric: "text+data",
            unit: "bytes",
            rust: 50.0,
            c: 100.0,
        }];
        let j = to_json(&rows, &fp);
        assert_eq!(j[0]["ratio"], 1.25);
        assert_eq!(j[0]["samples"]["rust"][0], 5.0);
        assert_eq!(j[3]["ratio"], 2.0);
    }
}

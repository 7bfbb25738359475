//! What a run measured, and how it reads.
//!
//! Owns [`Recorder`] (one per client task: an HDR histogram of latencies in
//! microseconds plus failed requests counted by message, merged at the end),
//! [`Report`] (a merged recorder and the wall time of its phase), the text
//! report in the layout of etcd's tool (summary, response time histogram,
//! latency distribution, error distribution) and the `--json` line.
//! [`Outcome`] is what a workload hands back: notes and titled reports for
//! people, one headline report for scripts.
//!
//! Does not own: printing (see `output`), or timing requests (see `driver`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Lowest and highest latency the histograms hold, in microseconds (one
/// microsecond to one hour; slower requests are clamped to an hour).
const LATENCY_US_MIN: u64 = 1;
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Three significant digits: values are exact to 0.1%.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Percentiles of the latency distribution, as etcd's tool prints them.
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// Buckets of the response time histogram (plus one for the slowest).
const HISTOGRAM_BUCKETS: usize = 10;
const HISTOGRAM_BAR_WIDTH: u64 = 40;
const HISTOGRAM_BAR: &str = "∎";

/// Latencies and errors seen by one task (or merged from many).
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        let latencies_us =
            Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid");
        Recorder {
            latencies_us,
            errors: BTreeMap::new(),
        }
    }

    /// Records one successful request. Sub-microsecond latencies count as
    /// one microsecond, so every sample is positive.
    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).max(LATENCY_US_MIN);
        self.latencies_us.saturating_record(us);
    }

    /// Records one failed request.
    pub fn record_error(&mut self, message: String) {
        *self.errors.entry(message).or_insert(0) += 1;
    }

    /// Records `count` failures with the same message.
    pub fn record_errors(&mut self, message: &str, count: u64) {
        if count > 0 {
            *self.errors.entry(message.to_owned()).or_insert(0) += count;
        }
    }

    /// Adds another recorder's samples and errors to this one.
    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, which is all `add` checks;
        // a failure would only drop samples, never corrupt them.
        let _ = self.latencies_us.add(&other.latencies_us);
        for (message, count) in &other.errors {
            *self.errors.entry(message.clone()).or_insert(0) += count;
        }
    }

    /// Successful requests recorded.
    pub fn successes(&self) -> u64 {
        self.latencies_us.len()
    }

    /// Failed requests recorded.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One measured phase: its samples and how long it took.
#[derive(Debug, Clone)]
pub struct Report {
    pub recorder: Recorder,
    pub elapsed: Duration,
}

/// The figures of a report, in seconds unless named otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub successes: u64,
    pub failures: u64,
    pub total_s: f64,
    pub slowest_s: f64,
    pub fastest_s: f64,
    pub average_s: f64,
    pub stddev_s: f64,
    /// Successful requests per second of wall time, as etcd counts them.
    pub requests_per_sec: f64,
}

impl Report {
    pub fn new(recorder: Recorder, elapsed: Duration) -> Report {
        Report { recorder, elapsed }
    }

    pub fn summary(&self) -> Summary {
        let h = &self.recorder.latencies_us;
        let total_s = self.elapsed.as_secs_f64();
        let (slowest_s, fastest_s, average_s, stddev_s) = if h.is_empty() {
            (0.0, 0.0, 0.0, 0.0)
        } else {
            (
                us_to_s(h.max() as f64),
                us_to_s(h.min() as f64),
                us_to_s(h.mean()),
                us_to_s(h.stdev()),
            )
        };
        let requests_per_sec = if total_s > 0.0 {
            h.len() as f64 / total_s
        } else {
            0.0
        };
        Summary {
            successes: h.len(),
            failures: self.recorder.failures(),
            total_s,
            slowest_s,
            fastest_s,
            average_s,
            stddev_s,
            requests_per_sec,
        }
    }

    /// Latency at `percentile` (0–100) in milliseconds; 0 with no samples.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        let h = &self.recorder.latencies_us;
        if h.is_empty() {
            return 0.0;
        }
        h.value_at_percentile(percentile) as f64 / 1000.0
    }

    /// Counts per bucket of the response time histogram: bucket `i` holds
    /// the samples at most `bounds[i]` and above `bounds[i-1]`, the bounds
    /// splitting fastest..slowest in ten equal steps (etcd's layout).
    pub fn histogram_buckets(&self) -> Vec<(f64, u64)> {
        let h = &self.recorder.latencies_us;
        if h.is_empty() {
            return Vec::new();
        }
        let fastest = h.min() as f64;
        let slowest = h.max() as f64;
        let step = (slowest - fastest) / HISTOGRAM_BUCKETS as f64;
        let mut buckets: Vec<(f64, u64)> = (0..HISTOGRAM_BUCKETS)
            .map(|i| (fastest + step * i as f64, 0))
            .chain(std::iter::once((slowest, 0)))
            .collect();
        for value in h.iter_recorded() {
            // The bucket's lowest value: `min()` is reported the same way,
            // so the fastest sample falls in the first bucket.
            let us = h.lowest_equivalent(value.value_iterated_to()) as f64;
            let index = buckets
                .iter()
                .position(|(bound, _)| us <= *bound)
                .unwrap_or(HISTOGRAM_BUCKETS);
            buckets[index].1 += value.count_since_last_iteration();
        }
        buckets
            .into_iter()
            .map(|(bound_us, count)| (us_to_s(bound_us), count))
            .collect()
    }

    /// The report as etcd's tool prints it.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let summary = self.summary();
        if summary.successes > 0 {
            let _ = write!(
                text,
                "\nSummary:\n  Total:\t{:.4} secs.\n  Slowest:\t{:.4} secs.\n  \
                 Fastest:\t{:.4} secs.\n  Average:\t{:.4} secs.\n  Stddev:\t{:.4} secs.\n  \
                 Requests/sec:\t{:.4}\n",
                summary.total_s,
                summary.slowest_s,
                summary.fastest_s,
                summary.average_s,
                summary.stddev_s,
                summary.requests_per_sec,
            );
            let buckets = self.histogram_buckets();
            let most = buckets.iter().map(|(_, count)| *count).max().unwrap_or(0);
            text.push_str("\nResponse time histogram:\n");
            for (bound_s, count) in &buckets {
                let bar_len = (count * HISTOGRAM_BAR_WIDTH).checked_div(most).unwrap_or(0);
                let _ = writeln!(
                    text,
                    "  {bound_s:.4} [{count}]\t|{}",
                    HISTOGRAM_BAR.repeat(bar_len as usize)
                );
            }
            text.push_str("\nLatency distribution:\n");
            for percentile in PERCENTILES {
                let _ = writeln!(
                    text,
                    "  {percentile}% in {:.3} ms.",
                    self.percentile_ms(percentile)
                );
            }
        } else {
            let _ = writeln!(
                text,
                "\nSummary:\n  Total:\t{:.4} secs.\n  No successful requests.",
                summary.total_s
            );
        }
        if !self.recorder.errors.is_empty() {
            text.push_str("\nError distribution:\n");
            for (message, count) in &self.recorder.errors {
                let _ = writeln!(text, "  [{count}]\t{message}");
            }
        }
        text
    }

    /// The `--json` line (without the newline).
    pub fn to_json_line(&self, workload: &str) -> Result<String, serde_json::Error> {
        let summary = self.summary();
        // Latencies are whole microseconds: three decimals of a millisecond.
        let ms = |value: f64| (value * 1000.0).round() / 1000.0;
        let line = JsonLine {
            workload,
            total: summary.successes + summary.failures,
            duration_s: (summary.total_s * 1e6).round() / 1e6,
            requests_per_sec: (summary.requests_per_sec * 1000.0).round() / 1000.0,
            p50_ms: ms(self.percentile_ms(50.0)),
            p90_ms: ms(self.percentile_ms(90.0)),
            p99_ms: ms(self.percentile_ms(99.0)),
            p999_ms: ms(self.percentile_ms(99.9)),
            max_ms: ms(summary.slowest_s * 1000.0),
            errors: summary.failures,
        };
        serde_json::to_string(&line)
    }
}

fn us_to_s(us: f64) -> f64 {
    us / 1_000_000.0
}

/// The machine-readable result of a run: one line, stable field names.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    workload: &'a str,
    /// Requests made (successful + failed).
    total: u64,
    duration_s: f64,
    requests_per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    errors: u64,
}

/// A titled report in the text output.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: Option<String>,
    pub report: Report,
}

/// What a workload hands back to be printed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub workload: &'static str,
    /// Lines printed before the reports (what was run, retries seen).
    pub notes: Vec<String>,
    /// Reports in print order.
    pub sections: Vec<Section>,
    /// The report the `--json` line describes.
    pub headline: Report,
}

impl Outcome {
    /// A run with a single measured phase.
    pub fn single(workload: &'static str, notes: Vec<String>, report: Report) -> Outcome {
        Outcome {
            workload,
            notes,
            sections: vec![Section {
                title: None,
                report: report.clone(),
            }],
            headline: report,
        }
    }

    /// The whole text output.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for note in &self.notes {
            text.push_str(note);
            text.push('\n');
        }
        for section in &self.sections {
            if let Some(title) = &section.title {
                let _ = write!(text, "\n{title}:");
            }
            text.push_str(&section.report.to_text());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_of(latencies_ms: &[u64], elapsed_s: u64) -> Report {
        let mut recorder = Recorder::new();
        for &ms in latencies_ms {
            recorder.record(Duration::from_millis(ms));
        }
        Report::new(recorder, Duration::from_secs(elapsed_s))
    }

    #[test]
    fn summary_figures_come_from_the_histogram() {
        let report = report_of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2);
        let summary = report.summary();
        assert_eq!(summary.successes, 10);
        assert_eq!(summary.failures, 0);
        assert_eq!(summary.total_s, 2.0);
        assert_eq!(summary.requests_per_sec, 5.0);
        assert!((summary.fastest_s - 0.001).abs() < 1e-5);
        assert!((summary.slowest_s - 0.010).abs() < 1e-5);
        assert!((summary.average_s - 0.0055).abs() < 1e-5);
        // Population stddev of 1..=10 ms is 2.872 ms.
        assert!(
            (summary.stddev_s - 0.002872).abs() < 1e-5,
            "{}",
            summary.stddev_s
        );
    }

    #[test]
    fn percentiles_are_within_hdr_precision() {
        let latencies: Vec<u64> = (1..=1000).collect();
        let report = report_of(&latencies, 1);
        for (percentile, expected_ms) in
            [(10.0, 100.0), (50.0, 500.0), (99.0, 990.0), (99.9, 1000.0)]
        {
            let got = report.percentile_ms(percentile);
            assert!(
                (got - expected_ms).abs() <= expected_ms * 0.001 + 0.001,
                "p{percentile}: {got} ms, expected {expected_ms} ms"
            );
        }
    }

    #[test]
    fn sub_microsecond_latencies_are_recorded_as_positive() {
        let mut recorder = Recorder::new();
        recorder.record(Duration::from_nanos(10));
        let report = Report::new(recorder, Duration::from_secs(1));
        assert!(report.percentile_ms(50.0) > 0.0);
    }

    #[test]
    fn merging_adds_samples_and_errors() {
        let mut a = Recorder::new();
        a.record(Duration::from_millis(1));
        a.record_error("boom".into());
        let mut b = Recorder::new();
        b.record(Duration::from_millis(3));
        b.record_error("boom".into());
        b.record_errors("other", 3);
        b.record_errors("none", 0);
        a.merge(&b);
        assert_eq!(a.successes(), 2);
        assert_eq!(a.failures(), 5);
        assert_eq!(a.errors.len(), 2);
    }

    #[test]
    fn histogram_buckets_split_fastest_to_slowest_in_ten() {
        let latencies: Vec<u64> = (1..=100).collect();
        let report = report_of(&latencies, 1);
        let buckets = report.histogram_buckets();
        assert_eq!(buckets.len(), 11);
        assert_eq!(buckets.iter().map(|(_, c)| c).sum::<u64>(), 100);
        assert!((buckets[0].0 - 0.001).abs() < 1e-5);
        assert!((buckets[10].0 - 0.100).abs() < 1e-4);
        // Bounds grow by (100-1)/10 = 9.9 ms.
        assert!((buckets[1].0 - 0.0109).abs() < 1e-4);
        assert_eq!(
            buckets[0].1, 1,
            "only the fastest sample is at most the first bound"
        );
        for (_, count) in &buckets[1..10] {
            assert!((9..=11).contains(count), "{buckets:?}");
        }
    }

    #[test]
    fn text_report_has_etcds_sections() {
        let mut recorder = Recorder::new();
        for ms in [1, 1, 2, 5] {
            recorder.record(Duration::from_millis(ms));
        }
        recorder.record_error("rpc error: code = Unavailable desc = gone".into());
        let text = Report::new(recorder, Duration::from_millis(500)).to_text();
        assert!(
            text.starts_with("\nSummary:\n  Total:\t0.5000 secs.\n"),
            "{text}"
        );
        assert!(text.contains("  Slowest:\t0.0050 secs.\n"), "{text}");
        assert!(text.contains("  Fastest:\t0.0010 secs.\n"), "{text}");
        assert!(text.contains("  Average:\t0.0023 secs.\n"), "{text}");
        assert!(text.contains("  Requests/sec:\t8.0000\n"), "{text}");
        assert!(
            text.contains("\nResponse time histogram:\n  0.0010 [2]\t|"),
            "{text}"
        );
        assert!(
            text.contains(&format!("  0.0050 [1]\t|{}\n", "∎".repeat(20))),
            "{text}"
        );
        assert!(
            text.contains("\nLatency distribution:\n  10% in 1.000 ms.\n"),
            "{text}"
        );
        assert!(text.contains("  99.9% in 5.003 ms.\n"), "{text}");
        assert!(text.ends_with(
            "\nError distribution:\n  [1]\trpc error: code = Unavailable desc = gone\n"
        ));
    }

    #[test]
    fn text_report_without_successes_shows_errors_only() {
        let mut recorder = Recorder::new();
        recorder.record_errors("timeout", 2);
        let text = Report::new(recorder, Duration::from_secs(1)).to_text();
        assert!(text.contains("No successful requests."), "{text}");
        assert!(!text.contains("Latency distribution"), "{text}");
        assert!(text.contains("  [2]\ttimeout\n"), "{text}");
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let mut recorder = Recorder::new();
        for ms in 1..=100 {
            recorder.record(Duration::from_millis(ms));
        }
        recorder.record_errors("boom", 2);
        let line = Report::new(recorder, Duration::from_secs(4))
            .to_json_line("put")
            .unwrap();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "duration_s",
                "errors",
                "max_ms",
                "p50_ms",
                "p90_ms",
                "p999_ms",
                "p99_ms",
                "requests_per_sec",
                "total",
                "workload"
            ]
        );
        assert_eq!(value["workload"], "put");
        assert_eq!(value["total"], 102);
        assert_eq!(value["errors"], 2);
        assert_eq!(value["duration_s"], 4.0);
        assert_eq!(value["requests_per_sec"], 25.0);
        let near = |field: &str, ms: f64| {
            let got = value[field].as_f64().unwrap();
            assert!((got - ms).abs() <= ms * 0.001 + 0.001, "{field}: {got}");
        };
        near("p50_ms", 50.0);
        near("p90_ms", 90.0);
        near("p99_ms", 99.0);
        near("p999_ms", 100.0);
        near("max_ms", 100.0);
    }

    #[test]
    fn outcome_text_prints_notes_then_titled_sections() {
        let outcome = Outcome {
            workload: "watch",
            notes: vec!["bench with 2 watchers".into()],
            sections: vec![
                Section {
                    title: Some("Put summary".into()),
                    report: report_of(&[1], 1),
                },
                Section {
                    title: Some("Watch events summary".into()),
                    report: report_of(&[2], 1),
                },
            ],
            headline: report_of(&[2], 1),
        };
        let text = outcome.to_text();
        assert!(
            text.starts_with("bench with 2 watchers\n\nPut summary:\nSummary:"),
            "{text}"
        );
        let put = text.find("Put summary").unwrap();
        let events = text.find("Watch events summary").unwrap();
        assert!(put < events);
    }
}

//! A run's summary per scorer (pass rate with its Wilson interval, mean value, the items that
//! failed) and a comparison's, as data and as the text the CLI prints.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scorers::ItemScores;
use crate::stats::{Comparison, Interval, wilson_interval};

/// One scorer over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorerSummary {
    pub scorer: String,
    /// Items this scorer scored.
    pub items: usize,
    pub passed: usize,
    pub pass_rate: f64,
    /// Wilson interval of the pass rate at the summary's confidence.
    pub interval: Option<Interval>,
    pub mean_value: f64,
    /// Ids of the items that failed, in run order.
    pub failed_items: Vec<String>,
}

/// A run summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub items: usize,
    /// Items that passed every scorer that scored them.
    pub items_all_passed: usize,
    pub confidence: f64,
    /// In the order scorers first appear in the run.
    pub scorers: Vec<ScorerSummary>,
}

impl RunReport {
    pub fn new(items: &[ItemScores], confidence: f64) -> RunReport {
        let mut scorers: Vec<ScorerSummary> = Vec::new();
        let mut sums: Vec<f64> = Vec::new();
        for item in items {
            for s in &item.scores {
                let i = match scorers.iter().position(|x| x.scorer == s.scorer) {
                    Some(i) => i,
                    None => {
                        scorers.push(ScorerSummary {
                            scorer: s.scorer.clone(),
                            items: 0,
                            passed: 0,
                            pass_rate: 0.0,
                            interval: None,
                            mean_value: 0.0,
                            failed_items: Vec::new(),
                        });
                        sums.push(0.0);
                        scorers.len() - 1
                    }
                };
                let summary = &mut scorers[i];
                summary.items += 1;
                sums[i] += s.value;
                if s.passed {
                    summary.passed += 1;
                } else {
                    summary.failed_items.push(item.item_id.clone());
                }
            }
        }
        for (summary, sum) in scorers.iter_mut().zip(sums) {
            if summary.items > 0 {
                summary.pass_rate = summary.passed as f64 / summary.items as f64;
                summary.mean_value = sum / summary.items as f64;
            }
            summary.interval =
                wilson_interval(summary.passed as u64, summary.items as u64, confidence);
        }
        RunReport {
            items: items.len(),
            items_all_passed: items
                .iter()
                .filter(|i| i.scores.iter().all(|s| s.passed))
                .count(),
            confidence,
            scorers,
        }
    }

    /// A table for a terminal.
    pub fn render_text(&self) -> String {
        let width = self
            .scorers
            .iter()
            .map(|s| s.scorer.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = String::new();
        let ci = format!("{:.0}% CI", self.confidence * 100.0);
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>6}  {:<16}  {:>10}",
            "scorer", "passed", "rate", ci, "mean value"
        );
        for s in &self.scorers {
            let _ = writeln!(
                out,
                "{:<width$}  {:>9}  {:>6}  {:<16}  {:>10}",
                s.scorer,
                format!("{}/{}", s.passed, s.items),
                percent(s.pass_rate),
                s.interval.map(interval_text).unwrap_or_default(),
                number(s.mean_value),
            );
        }
        let _ = writeln!(
            out,
            "items passing every scorer: {}/{}",
            self.items_all_passed, self.items
        );
        for s in self.scorers.iter().filter(|s| !s.failed_items.is_empty()) {
            let shown: Vec<&str> = s.failed_items.iter().take(8).map(String::as_str).collect();
            let more = s.failed_items.len().saturating_sub(shown.len());
            let _ = writeln!(
                out,
                "failed {}: {}{}",
                s.scorer,
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        out
    }
}

/// A mean value readably: three decimals, or three significant digits for tiny numbers
/// (costs in dollars per answer).
fn number(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.001 {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn interval_text(i: Interval) -> String {
    format!("[{}, {}]", percent(i.low), percent(i.high))
}

fn signed_percent(x: f64) -> String {
    format!("{:+.1} pp", x * 100.0)
}

/// A comparison for a terminal: per scorer, the pass rates, their difference with its interval
/// and McNemar's p, then the value test where there is one, and the verdict.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "paired items: {} (only in baseline: {}, only in candidate: {})",
        c.items.paired,
        c.items.only_in_baseline.len(),
        c.items.only_in_candidate.len()
    );
    for s in &c.scorers {
        let p = &s.pass;
        let verdict = match (s.regressed, s.improved) {
            (true, _) => "REGRESSED",
            (false, true) => "improved",
            _ => "no significant change",
        };
        let _ = writeln!(out, "{} — {verdict}", s.scorer);
        let _ = writeln!(
            out,
            "  pass rate {} → {} ({}{}); {} fixed, {} broken; McNemar p = {:.4} (adjusted {:.4})",
            percent(p.baseline_rate),
            percent(p.candidate_rate),
            signed_percent(p.difference),
            p.difference_interval
                .map(|i| format!(
                    ", CI [{}, {}]",
                    signed_percent(i.low),
                    signed_percent(i.high)
                ))
                .unwrap_or_default(),
            p.counts.candidate_only,
            p.counts.baseline_only,
            p.p_value,
            p.p_adjusted,
        );
        let _ = writeln!(
            out,
            "  smallest pass-rate change detectable with {} pairs: {}",
            s.pairs,
            p.mde
                .map(|m| format!("±{:.1} pp", m * 100.0))
                .unwrap_or_else(|| "none at this size (too few discordant pairs)".into())
        );
        if let Some(v) = &s.value {
            let _ = writeln!(
                out,
                "  mean value {} → {} (Δ {}{}); Wilcoxon p = {:.4} ({}, adjusted {:.4}); rank-biserial r = {:+.3}{}",
                number(v.baseline_mean),
                number(v.candidate_mean),
                number(v.mean_difference),
                v.bootstrap
                    .as_ref()
                    .map(|b| format!(
                        ", bootstrap CI [{}, {}]",
                        number(b.interval.low),
                        number(b.interval.high)
                    ))
                    .unwrap_or_default(),
                v.wilcoxon.p_value,
                v.wilcoxon.method.label(),
                v.p_adjusted,
                v.rank_biserial,
                if v.higher_is_better {
                    ""
                } else {
                    " (lower is better)"
                },
            );
        }
    }
    let _ = writeln!(
        out,
        "verdict: {} at α = {} ({:?} adjustment over all tests)",
        if c.regressed {
            "REGRESSED"
        } else if c.improved {
            "improved"
        } else {
            "no significant regression"
        },
        c.alpha,
        c.adjustment
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorers::Score;

    fn item(id: &str, scores: &[(&str, bool, f64)]) -> ItemScores {
        ItemScores {
            item_id: id.into(),
            scores: scores
                .iter()
                .map(|(s, p, v)| Score {
                    scorer: s.to_string(),
                    passed: *p,
                    value: *v,
                    detail: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn summarises_each_scorer_in_run_order() {
        let run = vec![
            item("a", &[("exact", true, 1.0), ("latency", true, 120.0)]),
            item("b", &[("exact", false, 0.0), ("latency", true, 80.0)]),
            item("c", &[("exact", true, 1.0), ("latency", false, 3000.0)]),
            item("d", &[("exact", true, 1.0)]),
        ];
        let s = RunReport::new(&run, 0.95);
        assert_eq!(s.items, 4);
        assert_eq!(s.items_all_passed, 2);
        assert_eq!(s.scorers[0].scorer, "exact");
        assert_eq!((s.scorers[0].passed, s.scorers[0].items), (3, 4));
        assert_eq!(s.scorers[0].failed_items, vec!["b"]);
        assert_eq!(s.scorers[1].items, 3);
        assert!((s.scorers[1].mean_value - 1066.666).abs() < 0.01);
        let i = s.scorers[0].interval.unwrap();
        assert!(i.low < 0.75 && 0.75 < i.high);
        let text = s.render_text();
        assert!(text.contains("3/4"), "{text}");
        assert!(text.contains("75.0%"), "{text}");
        assert!(text.contains("failed latency: c"), "{text}");
        assert!(text.contains("items passing every scorer: 2/4"), "{text}");
    }

    #[test]
    fn an_empty_run_renders() {
        let s = RunReport::new(&[], 0.95);
        assert!(s.render_text().contains("0/0"));
    }
}

//! Change-point detection when the caller gives no anomaly start.
//!
//! Method: a multivariate CUSUM for one change in mean, summed over all columns. Each column
//! gives two channels: the values (catches level shifts) and the absolute first differences
//! (catches a change in noise, which leaves the level alone). A channel is scaled by a robust σ of
//! its own first differences (1.4826·MAD/√2), which a single level shift barely touches, so a
//! large fault does not hide its own change. For every split `k` the statistic is
//! `Σ_channels S_k² · n / (k (n - k))` with `S_k = Σ_{i<k} (x_i - x̄)/σ`: the likelihood-ratio
//! statistic for a mean change at `k` under Gaussian noise, whose normalisation removes the
//! usual CUSUM bias toward the middle of the series. Splits closer than `max(5, n/50)` rows to
//! either end are not considered (too little data on one side). Summing over columns makes a
//! fault that moves many metrics at once (the propagating case) locate sharply.

use crate::MetricSeries;

/// Returns the timestamp of the first anomalous row (the first row after the most likely single
/// change point), or `None` if the series is too short (fewer than 2 × the edge margin rows) or
/// has no column that varies.
pub fn detect_anomaly_start(series: &MetricSeries) -> Option<i64> {
    let cols: Vec<&[f64]> = series.columns.iter().map(|(_, c)| c.as_slice()).collect();
    detect_in(&series.timestamps, &cols)
}

/// [`detect_anomaly_start`] over a chosen set of columns (the graph's, when ranking).
pub(crate) fn detect_in(timestamps: &[i64], columns: &[&[f64]]) -> Option<i64> {
    let n = timestamps.len();
    let margin = (n / 50).max(5);
    if n < 2 * margin + 1 {
        return None;
    }
    let mut total = vec![0.0; n + 1];
    let mut any = false;
    let mut channel = Vec::with_capacity(n);
    let mut scratch = Vec::with_capacity(n);
    for &col in columns {
        if col.len() != n || col.iter().any(|v| !v.is_finite()) {
            continue;
        }
        channel.clear();
        channel.extend_from_slice(col);
        any |= add_channel(&channel, &mut total, &mut scratch);
        // |Δx| aligned so that row i holds |x_i - x_{i-1}| (row 0 repeats row 1).
        channel.clear();
        channel.push((col[1] - col[0]).abs());
        channel.extend(col.windows(2).map(|w| (w[1] - w[0]).abs()));
        any |= add_channel(&channel, &mut total, &mut scratch);
    }
    if !any {
        return None;
    }
    let best = (margin..=n - margin)
        .max_by(|&a, &b| total[a].total_cmp(&total[b]))
        .unwrap_or(margin);
    timestamps.get(best).copied()
}

/// Adds one channel's normalised CUSUM² curve to `total` (index k = split before row k).
/// Returns false for a channel with no variation.
fn add_channel(x: &[f64], total: &mut [f64], scratch: &mut Vec<f64>) -> bool {
    let n = x.len();
    scratch.clear();
    scratch.extend(x.windows(2).map(|w| w[1] - w[0]));
    let mut sigma = 0.0;
    if !scratch.is_empty() {
        let med = crate::stats::quantile_select(scratch, 0.5);
        for v in scratch.iter_mut() {
            *v = (*v - med).abs();
        }
        sigma = 1.4826 * crate::stats::quantile_select(scratch, 0.5) / std::f64::consts::SQRT_2;
    }
    let mean = crate::stats::mean(x);
    if sigma <= 0.0 {
        // Mostly-constant steps (quantised or sparse metrics): use the plain standard deviation.
        sigma = crate::stats::std_dev(x, mean);
    }
    if sigma <= crate::stats::floor_scale(mean) {
        return false;
    }
    let nf = n as f64;
    let mut s = 0.0;
    for k in 1..n {
        s += (x[k - 1] - mean) / sigma;
        let kf = k as f64;
        total[k] += s * s * nf / (kf * (nf - kf));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: &mut u64) -> f64 {
        // Sum of uniforms: roughly normal, deterministic, no dependency.
        (0..4)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .sum::<f64>()
            * 1.7
    }

    #[test]
    fn finds_a_level_shift_and_a_noise_change() {
        let mut seed = 7;
        let n = 400;
        let ts: Vec<i64> = (0..n).map(|i| 1_700_000_000 + i as i64 * 10).collect();
        let shift: Vec<f64> = (0..n)
            .map(|i| noise(&mut seed) + if i >= 300 { 1.5 } else { 0.0 })
            .collect();
        let s = MetricSeries {
            timestamps: ts.clone(),
            columns: vec![("a".into(), shift)],
        };
        let got = detect_anomaly_start(&s).expect("a change point");
        assert!(
            (got - ts[300]).abs() <= 50,
            "shift found at {got}, true {}",
            ts[300]
        );

        let wider: Vec<f64> = (0..n)
            .map(|i| noise(&mut seed) * if i >= 250 { 5.0 } else { 1.0 })
            .collect();
        let s = MetricSeries {
            timestamps: ts.clone(),
            columns: vec![("b".into(), wider)],
        };
        let got = detect_anomaly_start(&s).expect("a change point");
        assert!(
            (got - ts[250]).abs() <= 200,
            "noise change found at {got}, true {}",
            ts[250]
        );
    }

    #[test]
    fn too_short_or_flat_series_give_none() {
        let s = MetricSeries {
            timestamps: (0..8).collect(),
            columns: vec![("a".into(), vec![1.0; 8])],
        };
        assert_eq!(detect_anomaly_start(&s), None);
        let s = MetricSeries {
            timestamps: (0..100).collect(),
            columns: vec![("a".into(), vec![1.0; 100])],
        };
        assert_eq!(detect_anomaly_start(&s), None);
    }
}

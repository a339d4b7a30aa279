//! Small statistics kernels: quantiles, robust scale, residual tests, ridge least squares.

use statrs::distribution::{ContinuousCDF, Normal};

/// Linear-interpolation quantile of sorted data (numpy's default, "type 7"); the reference for
/// [`quantile_select`].
#[cfg(test)]
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Linear-interpolation quantile (numpy's default, "type 7") of unsorted data, by selection (O(n)); reorders `buf`.
pub(crate) fn quantile_select(buf: &mut [f64], q: f64) -> f64 {
    debug_assert!(!buf.is_empty());
    let pos = q * (buf.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut at_lo, above) = buf.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || above.is_empty() {
        return at_lo;
    }
    let at_hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    at_lo + (at_hi - at_lo) * frac
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
pub(crate) fn std_dev(xs: &[f64], mean: f64) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Median, IQR and a robust sigma of a sample, computed on a copy in `scratch`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Robust {
    pub median: f64,
    pub iqr: f64,
    /// IQR / 1.349 (σ for Gaussian data); falls back to 1.4826·MAD, then the sample standard
    /// deviation, then a tiny floor relative to the median, so a constant baseline does not divide
    /// by zero (any movement off a constant then scores very high, which is what it is).
    pub sigma: f64,
}

pub(crate) fn robust(xs: &[f64], scratch: &mut Vec<f64>) -> Robust {
    scratch.clear();
    scratch.extend_from_slice(xs);
    let median = quantile_select(scratch, 0.5);
    let iqr = quantile_select(scratch, 0.75) - quantile_select(scratch, 0.25);
    let mut sigma = iqr / 1.349;
    if sigma <= 0.0 {
        for v in scratch.iter_mut() {
            *v = (*v - median).abs();
        }
        sigma = 1.4826 * quantile_select(scratch, 0.5);
    }
    if sigma <= 0.0 {
        sigma = std_dev(xs, mean(xs));
    }
    Robust {
        median,
        iqr,
        sigma: sigma.max(floor_scale(median)),
    }
}

/// Smallest scale we divide by: relative to the level so units do not matter.
pub(crate) fn floor_scale(level: f64) -> f64 {
    1e-9 * level.abs().max(1.0)
}

/// Result of [`two_sample`]: did a series change between the baseline and the window?
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    /// The larger of |location z| and |scale z|.
    pub z: f64,
    /// Window median − baseline median, in baseline robust σ.
    pub shift: f64,
    /// Two-sided p-value of `z`, Bonferroni over the two parts.
    pub p: f64,
    /// Scale part: log ratio of the window's to the baseline's robust σ over its standard error.
    pub z_scale: f64,
}

/// Robust two-sample change test of `x[..split]` (baseline) against `x[split..]` (window), for
/// heavy-tailed and autocorrelated data:
/// - location: difference of medians over its large-sample standard error
///   (√(π/2)·σ/√n per median, σ = 1.4826·MAD of each part);
/// - scale: ln(σ_window / σ_baseline) over its large-sample standard error (Var ln MAD ≈ 1.36/n
///   for Gaussian data), so a variance change with an unchanged mean is seen;
/// - both divided by √((1+ρ)/(1−ρ)), ρ the lag-1 autocorrelation of the baseline (clamped to
///   [0, 0.95]): the variance inflation of a sample mean under AR(1) memory, so a node with slow
///   noise does not look more changed than one with white noise.
///
/// `scratch` is reused; `x` needs at least two values on each side (else zeros).
pub(crate) fn two_sample(x: &[f64], split: usize, scratch: &mut Vec<f64>) -> Change {
    let (base, win) = x.split_at(split.min(x.len()));
    if base.len() < 2 || win.len() < 2 {
        return Change {
            z: 0.0,
            shift: 0.0,
            p: 1.0,
            z_scale: 0.0,
        };
    }
    let (mb, sb) = median_mad(base, scratch);
    let (mw, sw) = median_mad(win, scratch);
    // A constant baseline (a fixed price, an error rate stuck at 0; float noise in the last digits
    // counts as constant) has no noise scale: under "nothing changed" the value stays put, so any
    // departure is certain and only its size relative to the level can order such nodes. Its
    // scale is a tiny fraction of the level (not of max(level, 1), which would order small-valued
    // metrics by absolute change), and the window's spread stays out of the location error.
    let relative_floor = 1e-9 * mb.abs().max(1e-12);
    let constant = sb <= relative_floor;
    let floor = if constant {
        relative_floor
    } else {
        floor_scale(mb)
    };
    let (sb, sw) = (sb.max(floor), sw.max(floor));
    let (nb, nw) = (base.len() as f64, win.len() as f64);
    let inflation = {
        let m = mean(base);
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..base.len() {
            let d = base[i] - m;
            den += d * d;
            if i > 0 {
                num += d * (base[i - 1] - m);
            }
        }
        let rho = if den > 0.0 {
            (num / den).clamp(0.0, 0.95)
        } else {
            0.0
        };
        ((1.0 + rho) / (1.0 - rho)).sqrt()
    };
    let window_var = if constant { 0.0 } else { sw * sw / nw };
    let se_loc = std::f64::consts::FRAC_PI_2.sqrt() * (sb * sb / nb + window_var).sqrt();
    let z_location = (mw - mb) / se_loc / inflation;
    let z_scale = (sw / sb).ln() / (1.36 / nb + 1.36 / nw).sqrt() / inflation;
    let z = z_location.abs().max(z_scale.abs());
    let p = (2.0 * 2.0 * std_normal().sf(z)).min(1.0);
    Change {
        z,
        shift: (mw - mb) / sb,
        p,
        z_scale,
    }
}

/// Median and 1.4826·MAD (σ for Gaussian data; the IQR/1.349 fallback and then the standard
/// deviation when more than half the values are equal).
fn median_mad(xs: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend_from_slice(xs);
    let med = quantile_select(scratch, 0.5);
    for v in scratch.iter_mut() {
        *v = (*v - med).abs();
    }
    let mut s = 1.4826 * quantile_select(scratch, 0.5);
    if s <= 0.0 {
        s = std_dev(xs, mean(xs));
    }
    (med, s)
}

/// Residuals of `y` on its parents, every row, with the mechanism fitted on rows `..fit_rows`
/// (the baseline). The mechanism is additive and, with `spline`, piecewise linear in each parent:
/// the parent itself plus hinges max(0, x − k) at the parent's baseline quartiles, so saturating,
/// threshold and convex links are followed over the baseline's range and continued linearly past
/// it. With more than `MAX_SPLINE_PARENTS` parents only the linear terms are used (the fit stays
/// well-posed and within the time budget). Ridge least squares as in [`ridge_fit`].
///
/// Fitted on the baseline only, not on both periods: a one-mechanism fit over both periods lets a
/// parent that barely moved "explain" a child's large change through a slope the baseline never
/// showed (seen on the fleet test where a region's median moves a little because one of its
/// tools failed).
pub(crate) fn mechanism_residuals(
    y: &[f64],
    parents: &[&[f64]],
    fit_rows: usize,
    spline: bool,
    scratch: &mut Vec<f64>,
) -> Vec<f64> {
    const MAX_SPLINE_PARENTS: usize = 6;
    let n = y.len();
    let fit_rows = fit_rows.clamp(1, n);
    let spline = spline && parents.len() <= MAX_SPLINE_PARENTS;
    let mut feats: Vec<Vec<f64>> = Vec::with_capacity(parents.len() * 4);
    for &x in parents {
        feats.push(x.to_vec());
        if spline {
            scratch.clear();
            scratch.extend_from_slice(&x[..fit_rows]);
            let knots = [
                quantile_select(scratch, 0.25),
                quantile_select(scratch, 0.5),
                quantile_select(scratch, 0.75),
            ];
            for k in knots {
                feats.push(x.iter().map(|v| (v - k).max(0.0)).collect());
            }
        }
    }
    let cols: Vec<&[f64]> = feats.iter().map(Vec::as_slice).collect();
    let fit_cols: Vec<&[f64]> = cols.iter().map(|c| &c[..fit_rows]).collect();
    let (intercept, beta, _) = ridge_fit(&y[..fit_rows], &fit_cols);
    (0..n)
        .map(|i| y[i] - intercept - beta.iter().zip(&cols).map(|(b, c)| b * c[i]).sum::<f64>())
        .collect()
}

fn std_normal() -> Normal {
    // Parameters are constants, so this cannot fail; fall back to the default (also N(0,1)).
    Normal::new(0.0, 1.0).unwrap_or_default()
}

/// Least squares of `y` on the columns of `x` (each a slice as long as `y`) with an intercept,
/// on standardised regressors with a small ridge term. Regressors that are constant over the
/// sample are dropped (coefficient 0). The ridge keeps collinear or too-few-sample fits solvable;
/// if the Cholesky factorisation still fails the ridge is raised tenfold until it succeeds.
/// Returns (intercept, coefficients on the original scale, residual σ with n - p - 1 dof).
pub(crate) fn ridge_fit(y: &[f64], x: &[&[f64]]) -> (f64, Vec<f64>, f64) {
    let n = y.len();
    let p = x.len();
    let y_mean = mean(y);
    let mut x_mean = vec![0.0; p];
    let mut x_sd = vec![0.0; p];
    for (j, col) in x.iter().enumerate() {
        x_mean[j] = mean(col);
        x_sd[j] = std_dev(col, x_mean[j]);
    }
    let active: Vec<usize> = (0..p)
        .filter(|&j| x_sd[j] > floor_scale(x_mean[j]))
        .collect();
    let q = active.len();
    let mut beta = vec![0.0; p];
    if q > 0 {
        // Normal equations on standardised regressors: (ZᵀZ + λI) b = Zᵀy.
        let mut a = vec![0.0; q * q];
        let mut rhs = vec![0.0; q];
        let z: Vec<Vec<f64>> = active
            .iter()
            .map(|&j| x[j].iter().map(|v| (v - x_mean[j]) / x_sd[j]).collect())
            .collect();
        for r in 0..q {
            rhs[r] = z[r].iter().zip(y).map(|(zr, yv)| zr * (yv - y_mean)).sum();
            for c in 0..=r {
                a[r * q + c] = z[r].iter().zip(&z[c]).map(|(u, v)| u * v).sum();
            }
        }
        for r in 0..q {
            for c in 0..r {
                a[c * q + r] = a[r * q + c];
            }
        }
        // λ relative to n (the diagonal of ZᵀZ is n - 1): negligible for a well-posed fit,
        // decisive when regressors are collinear or outnumber the samples.
        let mut lambda = 1e-6 * n as f64 + if q + 2 > n { n as f64 } else { 0.0 };
        let b = loop {
            if let Some(b) = cholesky_solve(&a, &rhs, q, lambda) {
                break b;
            }
            lambda = (lambda * 10.0).max(1e-6);
        };
        for (r, &j) in active.iter().enumerate() {
            beta[j] = b[r] / x_sd[j];
        }
    }
    let intercept = y_mean - beta.iter().zip(&x_mean).map(|(b, m)| b * m).sum::<f64>();
    let mut ss = 0.0;
    for i in 0..n {
        let pred = intercept + beta.iter().zip(x).map(|(b, col)| b * col[i]).sum::<f64>();
        ss += (y[i] - pred).powi(2);
    }
    let dof = n.saturating_sub(q + 1).max(1) as f64;
    (intercept, beta, (ss / dof).sqrt())
}

/// Solves (A + λI) x = b for symmetric positive-definite A (q×q, row-major) by Cholesky.
fn cholesky_solve(a: &[f64], b: &[f64], q: usize, lambda: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; q * q];
    for i in 0..q {
        for j in 0..=i {
            let mut s = a[i * q + j] + if i == j { lambda } else { 0.0 };
            for k in 0..j {
                s -= l[i * q + k] * l[j * q + k];
            }
            if i == j {
                if s <= 1e-12 * (1.0 + a[i * q + i].abs()) || !s.is_finite() {
                    return None;
                }
                l[i * q + i] = s.sqrt();
            } else {
                l[i * q + j] = s / l[j * q + j];
            }
        }
    }
    let mut y = vec![0.0; q];
    for i in 0..q {
        let s = b[i] - (0..i).map(|k| l[i * q + k] * y[k]).sum::<f64>();
        y[i] = s / l[i * q + i];
    }
    let mut x = vec![0.0; q];
    for i in (0..q).rev() {
        let s = y[i] - (i + 1..q).map(|k| l[k * q + i] * x[k]).sum::<f64>();
        x[i] = s / l[i * q + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_type7() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.5), 2.5);
        assert_eq!(quantile_sorted(&s, 0.25), 1.75);
        let mut u = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile_select(&mut u, 0.25), 1.75);
        assert_eq!(quantile_select(&mut u, 0.5), 2.5);
        assert_eq!(quantile_select(&mut u, 1.0), 4.0);
    }

    /// Deterministic N(0,1) draws (Box–Muller over a splitmix64 stream).
    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        let mut u = move || {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (a, b) = (u().max(1e-300), u());
                (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
            })
            .collect()
    }

    #[test]
    fn two_sample_sees_a_variance_change_with_the_mean_unchanged() {
        let mut scratch = Vec::new();
        let mut x = normals(1, 600);
        for v in &mut x[400..] {
            *v *= 3.0;
        }
        let c = two_sample(&x, 400, &mut scratch);
        assert!(c.z_scale > 8.0, "{c:?}");
        assert!(c.shift.abs() < 0.5, "{c:?}");
        assert!(c.p < 1e-10, "{c:?}");
        // And nothing changed: no alarm at a 1% two-sided level on either part.
        let y = normals(2, 600);
        let c = two_sample(&y, 400, &mut scratch);
        assert!(c.z < 3.0, "{c:?}");
    }

    #[test]
    fn constant_baselines_are_ordered_by_relative_change() {
        // A per-agent cost stuck at 0.005 that jumps twelvefold, and a model total stuck at 0.05
        // that it drags up by 80% (two window rows, as in a short healer window). Both changes are
        // certain; the larger relative one must score higher, whatever the window's spread.
        let mut scratch = Vec::new();
        let mut agent = vec![0.005; 24];
        agent.extend([0.104, 0.022]);
        let mut model = vec![0.05; 24];
        model.extend([0.149, 0.031]);
        let a = two_sample(&agent, 24, &mut scratch);
        let m = two_sample(&model, 24, &mut scratch);
        assert!(a.z > 1e6 && m.z > 1e6, "{a:?} {m:?}");
        assert!(a.z > 5.0 * m.z, "{a:?} {m:?}");
        assert!(a.z.is_finite() && a.p.is_finite());
    }

    #[test]
    fn two_sample_discounts_autocorrelation() {
        // AR(1) with φ = 0.8 and no change: a sample median wanders ~3× further than under white
        // noise, so an uncorrected test would exceed z = 3 on about a third of these series. The
        // corrected one rarely does.
        let mut scratch = Vec::new();
        let mut alarms = 0;
        for seed in 0..20 {
            let e = normals(100 + seed, 600);
            let mut x = Vec::with_capacity(600);
            let mut prev = 0.0;
            for v in e {
                prev = 0.8 * prev + 0.6 * v;
                x.push(prev);
            }
            let c = two_sample(&x, 400, &mut scratch);
            if c.z > 3.0 {
                alarms += 1;
            }
        }
        assert!(alarms <= 2, "{alarms} false alarms in 20");
    }

    #[test]
    fn mechanism_residuals_follow_a_saturating_link_into_the_window() {
        // y = 3·tanh(x/2) + noise; the baseline covers x in ±2.5, the window sits at x ≈ 4 where
        // a straight line through the baseline overshoots. The hinge fit leaves smaller residuals
        // there than the linear fit does.
        let noise = normals(7, 600);
        let xs = normals(8, 600);
        let x: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, v)| if i >= 400 { 4.0 + 0.5 * v } else { *v })
            .collect();
        let y: Vec<f64> = x
            .iter()
            .zip(&noise)
            .map(|(a, e)| 3.0 * (a / 2.0).tanh() + 0.2 * e)
            .collect();
        let mut scratch = Vec::new();
        let window_bias = |e: Vec<f64>| (e[400..].iter().sum::<f64>() / 200.0).abs();
        let spline = window_bias(mechanism_residuals(&y, &[&x], 400, true, &mut scratch));
        let linear = window_bias(mechanism_residuals(&y, &[&x], 400, false, &mut scratch));
        assert!(spline < 0.6 * linear, "spline {spline} linear {linear}");
    }

    #[test]
    fn ridge_recovers_coefficients_and_survives_collinearity() {
        let x1: Vec<f64> = (0..50).map(|i| (i as f64 * 0.7).sin()).collect();
        let x2: Vec<f64> = (0..50).map(|i| (i as f64 * 1.3).cos()).collect();
        let y: Vec<f64> = x1
            .iter()
            .zip(&x2)
            .map(|(a, b)| 1.0 + 2.0 * a - 3.0 * b)
            .collect();
        let (c, b, s) = ridge_fit(&y, &[&x1, &x2]);
        assert!((c - 1.0).abs() < 1e-3 && (b[0] - 2.0).abs() < 1e-3 && (b[1] + 3.0).abs() < 1e-3);
        assert!(s < 1e-3);
        // x1 twice: singular normal equations; the fit must still predict y from x1.
        let y2: Vec<f64> = x1.iter().map(|a| 2.0 * a).collect();
        let (_, b, s) = ridge_fit(&y2, &[&x1, &x1]);
        assert!((b[0] + b[1] - 2.0).abs() < 1e-3, "{b:?}");
        assert!(s < 1e-3);
    }
}

//! Small statistics kernels: quantiles, robust scale, residual tests, ridge least squares.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

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

/// Test of a standardised residual window `z` (residual / baseline σ, N(0,1) under "nothing
/// changed"): a mean-shift z-test and a variance (χ²) test, the latter mapped to the normal
/// scale with the Wilson–Hilferty transform so both read as z-values and never saturate the way
/// p-values do. Returns (statistic = max of the two, mean shift in σ units, two-sided p-value
/// with a Bonferroni factor of 2 for the two tests).
pub(crate) fn residual_test(z: &[f64]) -> (f64, f64, f64) {
    let w = z.len() as f64;
    let m = z.iter().sum::<f64>() / w;
    let z_mean = m * w.sqrt();
    let ss: f64 = z.iter().map(|v| v * v).sum();
    let k = 2.0 / (9.0 * w);
    let z_var = ((ss / w).cbrt() - (1.0 - k)) / k.sqrt();
    let stat = z_mean.abs().max(z_var);
    let p_mean = 2.0 * std_normal().sf(z_mean.abs());
    let p_var = ChiSquared::new(w).map(|c| c.sf(ss)).unwrap_or(1.0);
    let p = (2.0 * p_mean.min(p_var)).min(1.0);
    (stat, m, p)
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
        for i in 0..n {
            let yc = y[i] - y_mean;
            for (r, &jr) in active.iter().enumerate() {
                let zr = (x[jr][i] - x_mean[jr]) / x_sd[jr];
                rhs[r] += zr * yc;
                for (c, &jc) in active.iter().enumerate().take(r + 1) {
                    a[r * q + c] += zr * (x[jc][i] - x_mean[jc]) / x_sd[jc];
                }
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

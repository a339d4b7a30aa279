//! The console's charts, drawn on the server as inline SVG: a sparkline per agent and an
//! agent's trust over time. No script draws them, so they need nothing from the page's CSP and
//! print and scale like text. Scores are 0–100.

use std::fmt::Write as _;

/// A sparkline of scores (oldest first), `width` × `height` pixels, 0 at the bottom and 100
/// at the top; empty when there are fewer than two points.
pub fn sparkline(scores: &[f64], width: u32, height: u32) -> String {
    if scores.len() < 2 {
        return String::new();
    }
    let (w, h) = (f64::from(width), f64::from(height));
    let step = w / (scores.len() - 1) as f64;
    let mut points = String::new();
    for (i, s) in scores.iter().enumerate() {
        let _ = write!(points, "{:.1},{:.1} ", i as f64 * step, y_of(*s, h, 1.0));
    }
    let last = scores[scores.len() - 1];
    let first = scores[0];
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"trust {first:.0} to {last:.0}\">\
         <polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        points.trim_end()
    )
}

fn y_of(score: f64, height: f64, pad: f64) -> f64 {
    let s = score.clamp(0.0, 100.0);
    pad + (height - 2.0 * pad) * (1.0 - s / 100.0)
}

/// A point of [`trust_chart`]: unix milliseconds and score.
#[derive(Debug, Clone, Copy)]
pub struct ChartPoint {
    pub at_ms: i64,
    pub score: f64,
}

/// An agent's trust over time with a 0–100 axis, the SLA threshold as a dashed line, time
/// labels at both ends and a `<title>` per point (hover or screen reader).
pub fn trust_chart(points: &[ChartPoint], threshold: Option<f64>) -> String {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 36.0;
    const BOTTOM: f64 = 22.0;
    const TOP: f64 = 8.0;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let y = |s: f64| TOP + plot_h * (1.0 - s.clamp(0.0, 100.0) / 100.0);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"trust score over time, {} points\">",
        points.len()
    );
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick:.0}</text>",
            LEFT + plot_w,
            LEFT - 4.0,
            y(tick) + 4.0,
            y = y(tick),
        );
    }
    if let Some(t) = threshold {
        let _ = write!(
            out,
            "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
             stroke-dasharray=\"4 3\"><title>SLA threshold {t:.1}</title></line>",
            LEFT + plot_w,
            y = y(t),
        );
    }
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        out.push_str(&format!(
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no stored scores yet</text></svg>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        ));
        return out;
    };
    let span = (last.at_ms - first.at_ms).max(1) as f64;
    let x = |at: i64| {
        if points.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * (at - first.at_ms) as f64 / span
        }
    };
    let mut line = String::new();
    for p in points {
        let _ = write!(line, "{:.1},{:.1} ", x(p.at_ms), y(p.score));
    }
    let _ = write!(
        out,
        "<polyline class=\"series\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" points=\"{}\"/>",
        line.trim_end()
    );
    for p in points {
        let _ = write!(
            out,
            "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"><title>{} · {:.1}</title></circle>",
            x(p.at_ms),
            y(p.score),
            short_time(p.at_ms),
            p.score
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>\
         <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></svg>",
        H - 6.0,
        axis_time(first.at_ms, span),
        LEFT + plot_w,
        H - 6.0,
        axis_time(last.at_ms, span)
    );
    out
}

/// An axis label: with seconds when the chart spans less than two hours.
fn axis_time(ms: i64, span_ms: f64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if span_ms < 7_200_000.0 => t.format("%H:%M:%S UTC").to_string(),
        _ => short_time(ms),
    }
}

/// `HH:MM` UTC, with the date when it is not today.
pub fn short_time(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    if t.date_naive() == chrono::Utc::now().date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_runs_from_bottom_for_zero_to_top_for_a_hundred() {
        let svg = sparkline(&[0.0, 100.0], 100, 20);
        assert!(svg.contains("points=\"0.0,19.0 100.0,1.0\""), "{svg}");
        assert!(svg.contains("trust 0 to 100"));
        assert_eq!(sparkline(&[50.0], 100, 20), "");
    }

    #[test]
    fn the_chart_has_a_point_per_score_and_the_threshold() {
        let points = [
            ChartPoint {
                at_ms: 0,
                score: 90.0,
            },
            ChartPoint {
                at_ms: 60_000,
                score: 40.0,
            },
        ];
        let svg = trust_chart(&points, Some(60.0));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("SLA threshold 60.0"));
        assert!(trust_chart(&[], None).contains("no stored scores yet"));
    }
}

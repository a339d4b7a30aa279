//! Metric time series: a shared timestamp axis and one numeric column per metric.

use crate::CausalError;

/// Metric samples on one timestamp axis (unix seconds, strictly increasing).
///
/// Every column has one value per timestamp. The ranking methods need finite values; the CSV
/// reader fills gaps (see [`MetricSeries::from_csv`]), and series built by hand can call
/// [`MetricSeries::fill_missing`] to do the same.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    pub timestamps: Vec<i64>,
    pub columns: Vec<(String, Vec<f64>)>,
}

impl MetricSeries {
    /// Parses CSV with a header row holding a `timestamp` column (unix seconds; integers, or
    /// numbers with no fractional part such as `1.7e9`) and one numeric column per metric.
    ///
    /// Format: comma-separated, one record per line, no embedded commas or newlines in fields;
    /// surrounding double quotes and spaces around fields are stripped; blank lines are skipped;
    /// CRLF is accepted. Timestamps must be strictly increasing.
    ///
    /// Missing values: an empty cell or `NaN`/`nan`/`NA`/`null` is a gap. Gaps are filled by
    /// carrying the previous value forward (a scrape gap means "no new sample"), and gaps at the
    /// start of a column take its first observed value. A column with no value at all is an error.
    /// `inf` and other non-finite numbers are errors: they are not a gap, they are bad data.
    ///
    /// Errors name the 1-based line number and the column.
    pub fn from_csv(text: &str) -> Result<MetricSeries, CausalError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let (header_line, header) = lines.next().ok_or_else(|| CausalError::Csv {
            line: 1,
            message: "empty file; expected a header row with a `timestamp` column".into(),
        })?;
        let names: Vec<String> = header.split(',').map(|f| unquote(f).to_string()).collect();
        let ts_col =
            names
                .iter()
                .position(|n| n == "timestamp")
                .ok_or_else(|| CausalError::Csv {
                    line: header_line,
                    message: format!(
                        "no `timestamp` column in the header (found: {})",
                        names.join(", ")
                    ),
                })?;
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(CausalError::Csv {
                    line: header_line,
                    message: format!("header field {} is empty; every column needs a name", i + 1),
                });
            }
            if names[..i].contains(n) {
                return Err(CausalError::Csv {
                    line: header_line,
                    message: format!("duplicate column `{n}`"),
                });
            }
        }
        let mut timestamps = Vec::new();
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for (line_no, line) in lines {
            let mut count = 0;
            for (i, field) in line.split(',').enumerate() {
                count += 1;
                if i >= names.len() {
                    continue;
                }
                let field = unquote(field);
                if i == ts_col {
                    let ts = parse_timestamp(field).ok_or_else(|| CausalError::Csv {
                        line: line_no,
                        message: format!(
                            "column `timestamp`: `{field}` is not a unix time in whole seconds"
                        ),
                    })?;
                    if let Some(&prev) = timestamps.last()
                        && ts <= prev
                    {
                        return Err(CausalError::Csv {
                            line: line_no,
                            message: format!(
                                "column `timestamp`: {ts} does not follow {prev}; timestamps must be strictly increasing"
                            ),
                        });
                    }
                    timestamps.push(ts);
                } else {
                    let v = parse_value(field).map_err(|why| CausalError::Csv {
                        line: line_no,
                        message: format!("column `{}`: `{field}` {why}", names[i]),
                    })?;
                    values[i].push(v);
                }
            }
            if count != names.len() {
                return Err(CausalError::Csv {
                    line: line_no,
                    message: format!(
                        "{count} fields, the header has {}; every row needs one value per column",
                        names.len()
                    ),
                });
            }
        }
        if timestamps.is_empty() {
            return Err(CausalError::Csv {
                line: header_line,
                message: "no data rows after the header".into(),
            });
        }
        let columns = names
            .into_iter()
            .zip(values)
            .enumerate()
            .filter(|(i, _)| *i != ts_col)
            .map(|(_, c)| c)
            .collect();
        let mut series = MetricSeries {
            timestamps,
            columns,
        };
        series.fill_missing()?;
        Ok(series)
    }

    /// Replaces NaN gaps: forward fill, then leading gaps take the first observed value.
    /// Errors if a column has no finite value or holds an infinite one, or if a column's length
    /// differs from the timestamp axis.
    pub fn fill_missing(&mut self) -> Result<(), CausalError> {
        let n = self.timestamps.len();
        for (name, col) in &mut self.columns {
            if col.len() != n {
                return Err(CausalError::Series {
                    column: name.clone(),
                    message: format!("{} values for {n} timestamps", col.len()),
                });
            }
            if let Some(i) = col.iter().position(|v| v.is_infinite()) {
                return Err(CausalError::Series {
                    column: name.clone(),
                    message: format!("infinite value at row {i}"),
                });
            }
            let Some(first) = col.iter().copied().find(|v| v.is_finite()) else {
                return Err(CausalError::Series {
                    column: name.clone(),
                    message: "no finite value at all; drop the column or supply data".into(),
                });
            };
            let mut last = first;
            for v in col.iter_mut() {
                if v.is_nan() {
                    *v = last;
                } else {
                    last = *v;
                }
            }
        }
        Ok(())
    }

    /// The values of column `name`, if present.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Number of rows (timestamps).
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

fn parse_timestamp(field: &str) -> Option<i64> {
    if let Ok(ts) = field.parse::<i64>() {
        return Some(ts);
    }
    // pandas and spreadsheets sometimes write whole seconds as floats (`1700000000.0`).
    let f = field.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn parse_value(field: &str) -> Result<f64, &'static str> {
    if field.is_empty()
        || field.eq_ignore_ascii_case("nan")
        || field.eq_ignore_ascii_case("na")
        || field.eq_ignore_ascii_case("null")
    {
        return Ok(f64::NAN);
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("is not finite; use an empty cell or NaN for a missing sample"),
        Err(_) => Err("is not a number"),
    }
}

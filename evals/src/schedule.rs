//! When a cron schedule fires: parse and validate an expression in a time zone, and decide, at a
//! tick, whether a fire is due, how many were missed, and whether the catch-up rule runs or skips
//! them. Pure: the scheduler that claims fires in the store and starts runs lives in the service.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use cron::Schedule;

/// What to do with fires missed while no scheduler was running (a restart, a failover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Missed fires are dropped; the schedule waits for its next fire.
    Skip,
    /// The latest missed fire runs once, however many were missed.
    Once,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
        }
    }
}

impl FromStr for CatchUp {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(CatchUp::Skip),
            "once" => Ok(CatchUp::Once),
            other => Err(ScheduleError::CatchUp(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "cron expression {expr:?} is invalid ({reason}); expected 6 or 7 fields, seconds first, e.g. \"0 */15 * * * *\" (every 15 minutes)"
    )]
    Cron { expr: String, reason: String },
    #[error("cron expression {0:?} never fires")]
    NeverFires(String),
    #[error("time zone {0:?} is unknown; expected an IANA name such as UTC or Europe/Paris")]
    TimeZone(String),
    #[error("catch-up rule {0:?} is unknown; expected skip or once")]
    CatchUp(String),
}

/// A validated cron schedule in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: Schedule,
    tz: Tz,
    catch_up: CatchUp,
}

/// What a tick found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing to fire yet.
    No,
    /// Fire for the scheduled time `fire_ms` (the latest one not after now).
    Run { fire_ms: i64, missed: u32 },
    /// Fires were missed and the rule drops them: record `fire_ms` as done without running.
    Skip { fire_ms: i64, missed: u32 },
}

/// How late a fire may be found and still count as on time (a tick every second, and a leader
/// that may take a tick or two to settle).
pub const ON_TIME_MS: i64 = 5_000;

/// Missed fires counted at most (an every-second schedule down for a day would otherwise
/// iterate 86,400 times for a number nobody needs exactly).
const MAX_COUNTED: usize = 1_000;

impl CronSchedule {
    pub fn parse(expr: &str, timezone: &str, catch_up: &str) -> Result<Self, ScheduleError> {
        let schedule = Schedule::from_str(expr).map_err(|e| ScheduleError::Cron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
        let tz: Tz = timezone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(timezone.to_string()))?;
        if schedule.upcoming(tz).next().is_none() {
            return Err(ScheduleError::NeverFires(expr.to_string()));
        }
        Ok(CronSchedule {
            schedule,
            tz,
            catch_up: catch_up.parse()?,
        })
    }

    pub fn catch_up(&self) -> CatchUp {
        self.catch_up
    }

    /// The next fire strictly after `after_ms`, in Unix milliseconds.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = self.tz.from_utc_datetime(&utc(after_ms)?.naive_utc());
        self.schedule
            .after(&after)
            .next()
            .map(|t| t.with_timezone(&Utc).timestamp_millis())
    }

    /// At `now_ms`, with fires up to `last_fire_ms` already handled (the schedule's creation
    /// time when it never fired): is one due, and is it run or skipped?
    pub fn due(&self, last_fire_ms: i64, now_ms: i64) -> Due {
        let Some(last) = utc(last_fire_ms) else {
            return Due::No;
        };
        let last = self.tz.from_utc_datetime(&last.naive_utc());
        let mut pending = 0u32;
        let mut latest = None;
        for t in self.schedule.after(&last).take(MAX_COUNTED) {
            let ms = t.with_timezone(&Utc).timestamp_millis();
            if ms > now_ms {
                break;
            }
            pending += 1;
            latest = Some(ms);
        }
        if pending as usize == MAX_COUNTED {
            // More were missed than counted: the latest is the one just before now.
            if let Some(now) = utc(now_ms) {
                let now = self.tz.from_utc_datetime(&now.naive_utc());
                let just_before = self
                    .schedule
                    .after(&now)
                    .next_back()
                    .map(|t| t.with_timezone(&Utc).timestamp_millis());
                latest = just_before.or(latest);
            }
        }
        let Some(fire_ms) = latest else {
            return Due::No;
        };
        let missed = pending.saturating_sub(1);
        let on_time = now_ms - fire_ms <= ON_TIME_MS;
        match (self.catch_up, on_time) {
            (_, true) | (CatchUp::Once, false) => Due::Run { fire_ms, missed },
            (CatchUp::Skip, false) => Due::Skip {
                fire_ms,
                missed: missed + 1,
            },
        }
    }
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn bad_expressions_zones_and_rules_are_refused_with_what_is_expected() {
        let e = CronSchedule::parse("*/5 * * *", "UTC", "skip").unwrap_err();
        assert!(e.to_string().contains("seconds first"), "{e}");
        let e = CronSchedule::parse("0 0 * * * *", "Mars/Olympus", "skip").unwrap_err();
        assert_eq!(e, ScheduleError::TimeZone("Mars/Olympus".into()));
        let e = CronSchedule::parse("0 0 * * * *", "UTC", "sometimes").unwrap_err();
        assert_eq!(e, ScheduleError::CatchUp("sometimes".into()));
        let e = CronSchedule::parse("0 0 0 1 1 * 2001", "UTC", "skip").unwrap_err();
        assert!(matches!(e, ScheduleError::NeverFires(_)), "{e}");
    }

    #[test]
    fn a_fire_on_time_runs_and_nothing_is_due_before_it() {
        let s = CronSchedule::parse("0 */5 * * * *", "UTC", "skip").unwrap();
        let created = at("2026-12-06T10:01:00Z");
        assert_eq!(s.due(created, at("2026-12-06T10:04:59Z")), Due::No);
        assert_eq!(
            s.due(created, at("2026-12-06T10:05:01Z")),
            Due::Run {
                fire_ms: at("2026-12-06T10:05:00Z"),
                missed: 0
            }
        );
        // Once handled, it is not due again until the next fire.
        assert_eq!(
            s.due(at("2026-12-06T10:05:00Z"), at("2026-12-06T10:09:00Z")),
            Due::No
        );
    }

    #[test]
    fn missed_fires_are_skipped_or_run_once_by_the_rule() {
        let created = at("2026-12-06T10:01:00Z");
        let back = at("2026-12-06T10:32:00Z");
        let skip = CronSchedule::parse("0 */5 * * * *", "UTC", "skip").unwrap();
        assert_eq!(
            skip.due(created, back),
            Due::Skip {
                fire_ms: at("2026-12-06T10:30:00Z"),
                missed: 6
            }
        );
        let once = CronSchedule::parse("0 */5 * * * *", "UTC", "once").unwrap();
        assert_eq!(
            once.due(created, back),
            Due::Run {
                fire_ms: at("2026-12-06T10:30:00Z"),
                missed: 5
            }
        );
    }

    #[test]
    fn the_expression_is_read_in_its_time_zone() {
        // 09:00 in Paris is 08:00 UTC in winter.
        let s = CronSchedule::parse("0 0 9 * * *", "Europe/Paris", "skip").unwrap();
        assert_eq!(
            s.next_after(at("2026-12-06T00:00:00Z")),
            Some(at("2026-12-06T08:00:00Z"))
        );
    }

    #[test]
    fn a_long_outage_of_an_every_second_schedule_is_counted_cheaply() {
        let s = CronSchedule::parse("* * * * * *", "UTC", "once").unwrap();
        let now = at("2026-12-06T10:00:00.500Z");
        match s.due(at("2026-12-05T10:00:00Z"), now) {
            Due::Run { fire_ms, missed } => {
                assert_eq!(fire_ms, at("2026-12-06T10:00:00Z"));
                assert!(missed >= 999);
            }
            other => panic!("{other:?}"),
        }
    }
}

//! Deploy freezes: per-environment windows during which deploys are
//! refused unless an `app_admin` overrides with a reason (issue 14).
//!
//! Invariants (checked by [`FreezeWindow::validate`] before a window is
//! stored): a one-off window ends after it starts; a weekly window names
//! times as `HH:MM` (00:00-23:59), a known IANA time zone, and does not
//! start where it ends; the reason is not blank, holds no control
//! character and is at most [`MAX_REASON_CHARS`] characters.
//!
//! Semantics ([`FreezeWindow::covers`], decision 0017): a window covers the
//! half-open range `[start, end)`. A weekly window is evaluated on the local
//! wall time in its zone: it covers an instant when the zone's clock then
//! reads a weekday and time inside the range, which may wrap the week (Fri
//! 16:00 – Mon 08:00). So its UTC bounds move with daylight saving time; in
//! a spring-forward gap the window starts or ends at the first wall time
//! after the gap, and in a fall-back hour the repeated wall times are
//! covered (or not) both times.

use std::str::FromStr;

use chrono::{Datelike, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, FreezeWindowId, UserId};

/// Longest reason of a freeze window, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A window of one environment during which deploys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// Identity.
    pub id: FreezeWindowId,
    /// Owning app.
    pub app_id: AppId,
    /// The frozen environment.
    pub environment_id: EnvironmentId,
    /// When it applies.
    pub schedule: FreezeSchedule,
    /// Why (shown to whoever is refused).
    pub reason: String,
    /// Who created it.
    pub created_by: UserId,
    /// Creation time.
    pub created_at: Timestamp,
}

/// When a freeze window applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FreezeSchedule {
    /// Once, from `starts_at` (included) to `ends_at` (excluded).
    OneOff {
        /// First frozen instant.
        starts_at: Timestamp,
        /// First instant no longer frozen.
        ends_at: Timestamp,
    },
    /// Every week, from a local weekday and time to another, in `timezone`.
    Weekly {
        /// Day it starts.
        start_day: Weekday,
        /// Local time it starts, `HH:MM`.
        start_time: String,
        /// Day it ends (may be earlier in the week: the window wraps).
        end_day: Weekday,
        /// Local time it ends (excluded), `HH:MM`.
        end_time: String,
        /// IANA time zone, e.g. `Europe/Berlin`.
        timezone: String,
    },
}

/// A day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Days since Monday (0-6).
    fn index(self) -> u32 {
        self as u32
    }
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Weekday::Monday,
            chrono::Weekday::Tue => Weekday::Tuesday,
            chrono::Weekday::Wed => Weekday::Wednesday,
            chrono::Weekday::Thu => Weekday::Thursday,
            chrono::Weekday::Fri => Weekday::Friday,
            chrono::Weekday::Sat => Weekday::Saturday,
            chrono::Weekday::Sun => Weekday::Sunday,
        }
    }
}

const SECS_PER_DAY: u32 = 86_400;

/// Parses `HH:MM` (two digits each, 00:00-23:59).
fn parse_hhmm(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// Seconds since Monday 00:00 of `day` at `time`.
fn second_of_week(day: Weekday, time: NaiveTime) -> u32 {
    day.index() * SECS_PER_DAY + time.num_seconds_from_midnight()
}

impl FreezeSchedule {
    /// Checks the schedule (see the module invariants).
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            FreezeSchedule::OneOff { starts_at, ends_at } => {
                if ends_at <= starts_at {
                    return Err(Error::invalid(
                        "schedule.ends_at",
                        "ends_before_start",
                        "a freeze window must end after it starts",
                    ));
                }
            }
            FreezeSchedule::Weekly { start_day, start_time, end_day, end_time, timezone } => {
                let time = |field: &str, text: &str| {
                    parse_hhmm(text).ok_or_else(|| {
                        Error::invalid(field, "invalid_time", format!("{text:?} is not a time as HH:MM (00:00-23:59)"))
                    })
                };
                let start = time("schedule.start_time", start_time)?;
                let end = time("schedule.end_time", end_time)?;
                if chrono_tz::Tz::from_str(timezone).is_err() {
                    return Err(Error::invalid(
                        "schedule.timezone",
                        "unknown_timezone",
                        format!("{timezone:?} is not a known IANA time zone (e.g. Europe/Berlin)"),
                    ));
                }
                if second_of_week(*start_day, start) == second_of_week(*end_day, end) {
                    return Err(Error::invalid(
                        "schedule.end_time",
                        "empty_window",
                        "a weekly freeze window must not end where it starts",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl FreezeWindow {
    /// Checks the reason and the schedule.
    pub fn validate(&self) -> Result<(), Error> {
        if self.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "required", "a freeze window needs a reason"));
        }
        if self.reason.chars().any(char::is_control) {
            return Err(Error::invalid("reason", "invalid", "a freeze window's reason holds no control characters"));
        }
        if self.reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::invalid(
                "reason",
                "too_long",
                format!("a freeze window's reason is at most {MAX_REASON_CHARS} characters"),
            ));
        }
        self.schedule.validate()
    }

    /// True when deploys to its environment are frozen at `at` (see the
    /// module docs). A weekly window whose stored zone this build does not
    /// know (it was valid when stored) is evaluated in UTC; one whose times
    /// do not parse covers nothing.
    pub fn covers(&self, at: Timestamp) -> bool {
        match &self.schedule {
            FreezeSchedule::OneOff { starts_at, ends_at } => *starts_at <= at && at < *ends_at,
            FreezeSchedule::Weekly { start_day, start_time, end_day, end_time, timezone } => {
                let (Some(start), Some(end)) = (parse_hhmm(start_time), parse_hhmm(end_time)) else {
                    return false;
                };
                let local = match chrono_tz::Tz::from_str(timezone) {
                    Ok(zone) => at.with_timezone(&zone).naive_local(),
                    Err(_) => at.naive_utc(),
                };
                let now = second_of_week(local.weekday().into(), local.time());
                let (start, end) = (second_of_week(*start_day, start), second_of_week(*end_day, end));
                if start < end {
                    start <= now && now < end
                } else {
                    // Wraps the week: from start to Sunday's end, then from Monday to end.
                    now >= start || now < end
                }
            }
        }
    }
}

/// The first of `windows` (in the given order) that covers `at`.
pub fn active_freeze(windows: &[FreezeWindow], at: Timestamp) -> Option<&FreezeWindow> {
    windows.iter().find(|w| w.covers(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn utc(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
    }

    fn window(schedule: FreezeSchedule) -> FreezeWindow {
        FreezeWindow {
            id: FreezeWindowId(Uuid::now_v7()),
            app_id: AppId(Uuid::nil()),
            environment_id: EnvironmentId(Uuid::nil()),
            schedule,
            reason: "weekend".into(),
            created_by: UserId(Uuid::nil()),
            created_at: utc("2026-01-01T00:00:00Z"),
        }
    }

    fn weekly(start_day: Weekday, start: &str, end_day: Weekday, end: &str, zone: &str) -> FreezeWindow {
        window(FreezeSchedule::Weekly {
            start_day,
            start_time: start.into(),
            end_day,
            end_time: end.into(),
            timezone: zone.into(),
        })
    }

    fn weekend_in_berlin() -> FreezeWindow {
        weekly(Weekday::Friday, "16:00", Weekday::Monday, "08:00", "Europe/Berlin")
    }

    #[test]
    fn a_weekend_freeze_wraps_the_week_in_local_time() {
        let w = weekend_in_berlin();
        assert!(w.validate().is_ok());
        // A summer week: Berlin is UTC+2 (CEST). Fri 2026-07-10 .. Mon 2026-07-13.
        let cases = [
            ("2026-07-10T13:59:00Z", false), // Fri 15:59
            ("2026-07-10T13:59:59Z", false), // Fri 15:59:59
            ("2026-07-10T14:00:00Z", true),  // Fri 16:00
            ("2026-07-11T12:00:00Z", true),  // Sat
            ("2026-07-12T21:59:59Z", true),  // Sun 23:59:59
            ("2026-07-12T22:00:00Z", true),  // Mon 00:00
            ("2026-07-13T05:59:59Z", true),  // Mon 07:59:59
            ("2026-07-13T06:00:00Z", false), // Mon 08:00
            ("2026-07-15T10:00:00Z", false), // Wed
        ];
        for (instant, frozen) in cases {
            assert_eq!(w.covers(utc(instant)), frozen, "{instant}");
        }
    }

    #[test]
    fn a_weekly_freeze_follows_daylight_saving_time() {
        let w = weekend_in_berlin();
        // Berlin leaves summer time on Sun 2026-10-25 (03:00 CEST -> 02:00 CET):
        // the window opens at Fri 16:00 CEST = 14:00 UTC and closes at
        // Mon 08:00 CET = 07:00 UTC, 66 hours later instead of 64.
        let cases = [
            ("2026-10-23T13:59:00Z", false),
            ("2026-10-23T14:00:00Z", true),
            ("2026-10-25T01:30:00Z", true), // the repeated hour
            ("2026-10-26T06:00:00Z", true), // Mon 07:00 CET; 08:00 CEST would have ended it
            ("2026-10-26T06:59:59Z", true),
            ("2026-10-26T07:00:00Z", false),
        ];
        for (instant, frozen) in cases {
            assert_eq!(w.covers(utc(instant)), frozen, "{instant}");
        }
        // Spring forward, Sun 2026-03-29 02:00 CET -> 03:00 CEST: a window
        // starting at the missing 02:30 starts at the first wall time after it.
        let gap = weekly(Weekday::Sunday, "02:30", Weekday::Sunday, "05:00", "Europe/Berlin");
        assert!(!gap.covers(utc("2026-03-29T00:59:59Z")), "01:59:59 CET");
        assert!(gap.covers(utc("2026-03-29T01:00:00Z")), "03:00 CEST");
        assert!(!gap.covers(utc("2026-03-29T03:00:00Z")), "05:00 CEST");
    }

    #[test]
    fn a_window_within_one_day_and_in_another_zone() {
        let lunch = weekly(Weekday::Wednesday, "12:00", Weekday::Wednesday, "13:30", "America/New_York");
        // Wed 2026-01-14, New York is UTC-5.
        assert!(!lunch.covers(utc("2026-01-14T16:59:59Z")));
        assert!(lunch.covers(utc("2026-01-14T17:00:00Z")));
        assert!(lunch.covers(utc("2026-01-14T18:29:59Z")));
        assert!(!lunch.covers(utc("2026-01-14T18:30:00Z")));
        assert!(!lunch.covers(utc("2026-01-15T17:30:00Z")), "Thursday");
        // A week-long wrap: from Wednesday 12:00 to Wednesday 11:00.
        let almost_always = weekly(Weekday::Wednesday, "12:00", Weekday::Wednesday, "11:00", "UTC");
        assert!(almost_always.covers(utc("2026-01-14T10:59:59Z")));
        assert!(!almost_always.covers(utc("2026-01-14T11:30:00Z")));
        assert!(almost_always.covers(utc("2026-01-14T12:00:00Z")));
    }

    fn reason(err: Error) -> (String, String) {
        let d = err.details().unwrap();
        (d["field"].as_str().unwrap().to_owned(), d["reason"].as_str().unwrap().to_owned())
    }

    #[test]
    fn bad_windows_say_which_field_and_why() {
        let t = utc("2026-05-01T10:00:00Z");
        let backwards = window(FreezeSchedule::OneOff { starts_at: t, ends_at: t });
        assert_eq!(reason(backwards.validate().unwrap_err()), ("schedule.ends_at".into(), "ends_before_start".into()));
        for bad in ["24:00", "7:00", "07:60", "07-00", "07:00:00", "", "ab:cd", "+1:00"] {
            let w = weekly(Weekday::Friday, bad, Weekday::Monday, "08:00", "UTC");
            assert_eq!(
                reason(w.validate().unwrap_err()),
                ("schedule.start_time".into(), "invalid_time".into()),
                "{bad}"
            );
            let w = weekly(Weekday::Friday, "08:00", Weekday::Monday, bad, "UTC");
            assert_eq!(reason(w.validate().unwrap_err()), ("schedule.end_time".into(), "invalid_time".into()), "{bad}");
        }
        let zone = weekly(Weekday::Friday, "16:00", Weekday::Monday, "08:00", "Europe/Atlantis");
        assert_eq!(reason(zone.validate().unwrap_err()), ("schedule.timezone".into(), "unknown_timezone".into()));
        let empty = weekly(Weekday::Friday, "16:00", Weekday::Friday, "16:00", "UTC");
        assert_eq!(reason(empty.validate().unwrap_err()), ("schedule.end_time".into(), "empty_window".into()));
        for (text, why) in [("  ", "required"), (&"x".repeat(MAX_REASON_CHARS + 1), "too_long")] {
            let w = FreezeWindow { reason: text.to_owned(), ..weekend_in_berlin() };
            assert_eq!(reason(w.validate().unwrap_err()), ("reason".into(), why.into()));
        }
        let longest = FreezeWindow { reason: "ü".repeat(MAX_REASON_CHARS), ..weekend_in_berlin() };
        assert!(longest.validate().is_ok(), "characters, not bytes");
    }

    #[test]
    fn the_active_freeze_is_the_first_window_covering_the_instant() {
        let t = utc("2026-07-11T12:00:00Z"); // a Saturday
        let past = window(FreezeSchedule::OneOff { starts_at: utc("2026-01-01T00:00:00Z"), ends_at: t });
        let weekend = weekend_in_berlin();
        let around = window(FreezeSchedule::OneOff { starts_at: t, ends_at: utc("2026-07-12T00:00:00Z") });
        let windows = vec![past.clone(), weekend.clone(), around];
        assert_eq!(active_freeze(&windows, t), Some(&weekend));
        assert_eq!(active_freeze(&[past], t), None);
        assert_eq!(active_freeze(&[], t), None);
    }

    #[test]
    fn schedules_round_trip_with_a_kind_tag() {
        let w = weekend_in_berlin();
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["schedule"]["kind"], "weekly");
        assert_eq!(json["schedule"]["start_day"], "friday");
        assert_eq!(serde_json::from_value::<FreezeWindow>(json).unwrap(), w);
    }

    proptest! {
        /// A one-off window covers exactly `[starts_at, ends_at)`.
        #[test]
        fn a_one_off_window_covers_exactly_its_half_open_range(
            start in 0i64..1_000_000, len in 1i64..100_000, probe in -10i64..1_200_000,
        ) {
            let base = utc("2026-01-01T00:00:00Z");
            let seconds = |s: i64| base + chrono::TimeDelta::seconds(s);
            let w = window(FreezeSchedule::OneOff { starts_at: seconds(start), ends_at: seconds(start + len) });
            prop_assert!(w.validate().is_ok());
            prop_assert_eq!(w.covers(seconds(probe)), start <= probe && probe < start + len);
            prop_assert!(w.covers(seconds(start)));
            prop_assert!(!w.covers(seconds(start + len)));
            prop_assert!(w.covers(seconds(start + len) - chrono::TimeDelta::microseconds(1)));
        }
    }
}

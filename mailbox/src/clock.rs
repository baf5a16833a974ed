//! Time in one place: the clock the services read (injectable, so tests move it
//! instead of sleeping) and Japan Standard Time, the zone every page, letter and
//! statement speaks.
//!
//! Stored times are Unix seconds or milliseconds in UTC; JST appears only when a
//! time is shown or a calendar day is meant (billing months, retention days,
//! booking slots, audit exports).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, Utc};

/// Japan has no daylight saving time: UTC+9 all year.
pub const JST_OFFSET_SECS: i32 = 9 * 3600;
/// The same offset in milliseconds, for day bounds on stored millisecond times.
pub const JST_OFFSET_MS: i64 = JST_OFFSET_SECS as i64 * 1000;

/// What the services ask for the time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Now as Unix milliseconds.
    fn now_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Now as Unix seconds.
    fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// The wall-clock time in Japan now.
    fn now_jst(&self) -> NaiveDateTime {
        to_jst(self.now())
    }

    /// Today's date in Japan.
    fn today_jst(&self) -> NaiveDate {
        self.now_jst().date()
    }
}

/// A clock shared by the services of one application.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock that reads `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        Self {
            millis: AtomicI64::new(start.timestamp_millis()),
        }
    }

    /// A clock that reads the system time now, then stands still.
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(millis(by), Ordering::SeqCst);
    }

    /// Sets the clock to `to` (backwards too).
    pub fn set(&self, to: DateTime<Utc>) {
        self.millis.store(to.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

/// Unix milliseconds of the system clock, for code that has no clock handed to it
/// (stores stamping rows, logs).
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Unix seconds of the system clock.
pub fn now_secs() -> i64 {
    Utc::now().timestamp()
}

/// A duration as whole milliseconds, saturating (a policy of "forever" stays
/// forever instead of wrapping).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The JST zone.
pub fn jst_zone() -> FixedOffset {
    // 9 hours is always a valid offset; the fallback is never taken.
    FixedOffset::east_opt(JST_OFFSET_SECS).unwrap_or(Utc.fix())
}

/// A UTC instant as the wall-clock time in Japan.
pub fn to_jst(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc() + chrono::Duration::seconds(i64::from(JST_OFFSET_SECS))
}

/// Unix seconds as Japan wall-clock time; `None` out of chrono's range.
pub fn jst_from_secs(secs: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(to_jst)
}

/// Unix milliseconds as Japan wall-clock time; `None` out of chrono's range.
pub fn jst_from_millis(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(to_jst)
}

/// A UTC instant in RFC 3339 with the `+09:00` offset (exports, CSV).
pub fn rfc3339_jst(t: DateTime<Utc>) -> String {
    t.with_timezone(&jst_zone()).to_rfc3339()
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in Japan; empty out of range.
pub fn format_jst_minutes(secs: i64) -> String {
    jst_from_secs(secs)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` in Japan; empty out of range.
pub fn format_jst_minutes_millis(ms: i64) -> String {
    jst_from_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The first millisecond of a JST calendar day, as Unix milliseconds.
pub fn jst_day_start_millis(day: NaiveDate) -> Option<i64> {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() - JST_OFFSET_MS)
}

/// Today's date in Japan by the system clock.
pub fn today_jst() -> NaiveDate {
    SystemClock.today_jst()
}

/// The wall-clock time in Japan by the system clock.
pub fn now_jst() -> NaiveDateTime {
    SystemClock.now_jst()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japan_is_nine_hours_ahead_and_days_start_at_its_midnight() {
        let utc = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(); // 2023-11-14 22:13:20 UTC
        assert_eq!(to_jst(utc).to_string(), "2023-11-15 07:13:20");
        assert_eq!(format_jst_minutes(1_700_000_000), "2023-11-15 07:13");
        assert!(rfc3339_jst(utc).ends_with("+09:00"));
        let day = NaiveDate::from_ymd_opt(2023, 11, 15).unwrap_or_default();
        // Midnight in Tokyo is 15:00 UTC the day before.
        assert_eq!(jst_day_start_millis(day), Some(1_699_974_000_000));
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now_secs(), 1_000);
        clock.advance(Duration::from_millis(2_500));
        assert_eq!(clock.now_millis(), 1_002_500);
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(millis(Duration::from_secs(2)), 2_000);
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }
}

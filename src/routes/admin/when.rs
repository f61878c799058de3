//! One way to show a time in the console, on every page: UTC to the
//! second with the zone said (`2026-12-04 22:30:12 UTC`), how long ago
//! beside it (`5 min ago`), and the exact RFC 3339 time for machines
//! (`<time datetime>`). And one way to say a duration (`14 min 3 s`).

use crate::rfc3339::format as rfc3339;
use chrono::NaiveDateTime;

/// A time as a page shows it.
#[derive(Debug, Clone)]
pub struct When {
    /// `2026-12-04 22:30:12 UTC`.
    pub utc: String,
    /// `5 min ago`, `in 3 days`, `just now`.
    pub ago: String,
    /// `2026-12-04T22:30:12Z`, for `<time datetime>`.
    pub iso: String,
}

impl When {
    pub fn at(at: NaiveDateTime, now: NaiveDateTime) -> Self {
        When {
            utc: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ago: relative((now - at).num_seconds()),
            iso: rfc3339(at),
        }
    }
}

/// `seconds` before now (negative: after) in words.
fn relative(seconds: i64) -> String {
    let future = seconds < 0;
    let span = seconds.unsigned_abs();
    if span < 45 {
        return "just now".into();
    }
    let amount = match span {
        s if s < 90 * 60 => format!("{} min", (s + 30) / 60),
        s if s < 36 * 3600 => format!("{} h", (s + 1800) / 3600),
        s if s < 60 * 86_400 => format!("{} days", (s + 43_200) / 86_400),
        s if s < 730 * 86_400 => format!("{} months", (s + 15 * 86_400) / (30 * 86_400)),
        s => format!("{} years", (s + 182 * 86_400) / (365 * 86_400)),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A span of `seconds` in words: `45 s`, `14 min 3 s`, `2 h 5 min`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{} min", s / 60),
            rest => format!("{} min {rest} s", s / 60),
        },
        s if s < 86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            rest => format!("{} h {rest} min", s / 3600),
        },
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_the_same_everywhere() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T22:30:12Z")
            .unwrap()
            .naive_utc();
        let when = When::at(now - chrono::TimeDelta::minutes(5), now);
        assert_eq!(when.utc, "2026-12-04 22:25:12 UTC");
        assert_eq!(when.ago, "5 min ago");
        assert_eq!(when.iso, "2026-12-04T22:25:12Z");
        assert_eq!(relative(10), "just now");
        assert_eq!(relative(3 * 3600), "3 h ago");
        assert_eq!(relative(-3 * 86_400), "in 3 days");
        assert_eq!(relative(400 * 86_400), "13 months ago");
        assert_eq!(relative(3 * 365 * 86_400), "3 years ago");
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(843), "14 min 3 s");
        assert_eq!(duration(900), "15 min");
        assert_eq!(duration(7500), "2 h 5 min");
        assert_eq!(duration(3 * 86_400), "3 days");
    }
}

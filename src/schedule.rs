//! `TimerSchedule`: the timer's schedule, read as the Functions host reads it, for `check`'s
//! staleness table (issue #18): the longest time between two timer runs.
//!
//! The host takes a six-field NCRONTAB expression (`{second} {minute} {hour} {day} {month}
//! {day-of-week}`) or, on dedicated plans, a `TimeSpan` (`hh:mm:ss`). The `cron` crate reads the
//! same six fields, except that it numbers the days of the week 1–7 from Sunday where NCRONTAB
//! numbers them 0–6 (7 too) from Sunday, so numeric days are translated to names first. The
//! host's time zone (`WEBSITE_TIME_ZONE`) can shift runs but not the gaps between them, except
//! across a daylight-saving change, which is ignored here.

use std::str::FromStr;
use std::time::Duration;

const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// NCRONTAB's day-of-week field with its numbers as names (`1-5` → `MON-FRI`; steps stay).
fn translate_days(field: &str) -> Result<String, String> {
    let item = |item: &str| -> Result<String, String> {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let name = |n: &str| -> Result<String, String> {
            match n.parse::<usize>() {
                Ok(d) if d < DAYS.len() => Ok(DAYS[d].to_string()),
                Ok(d) => Err(format!("day of week {d} is outside 0-7")),
                Err(_) => Ok(n.to_string()),
            }
        };
        let range = match range.split_once('-') {
            Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
            None => name(range)?,
        };
        Ok(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        })
    };
    Ok(field
        .split(',')
        .map(item)
        .collect::<Result<Vec<_>, _>>()?
        .join(","))
}

/// The longest gap between two runs of `schedule` over the coming five weeks.
pub fn longest_gap(schedule: &str) -> Result<Duration, String> {
    let s = schedule.trim();
    if let Some(span) = time_span(s) {
        return Ok(span);
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "'{s}' is not a six-field NCRONTAB expression (second minute hour day month day-of-week)"
        ));
    }
    let expression = format!("{} {}", fields[..5].join(" "), translate_days(fields[5])?);
    let parsed = cron::Schedule::from_str(&expression).map_err(|e| format!("'{s}': {e}"))?;
    let start = chrono::Utc::now();
    let horizon = start + chrono::Duration::weeks(5);
    let mut runs = parsed.after(&start).take_while(|t| *t <= horizon);
    let Some(mut previous) = runs.next() else {
        return Err(format!("'{s}' never runs in the coming five weeks"));
    };
    let mut longest = chrono::Duration::zero();
    let mut count = 1;
    for run in runs.take(200_000) {
        longest = longest.max(run - previous);
        previous = run;
        count += 1;
    }
    if count == 1 {
        return Err(format!("'{s}' runs once in the coming five weeks"));
    }
    Ok(longest.to_std().unwrap_or_default())
}

/// A `TimeSpan` schedule, `hh:mm:ss`.
fn time_span(s: &str) -> Option<Duration> {
    let parts: Vec<u64> = s
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<_>>>()?;
    match parts.as_slice() {
        [h, m, sec] if *m < 60 && *sec < 60 && (h + m + sec) > 0 => {
            Some(Duration::from_secs(h * 3600 + m * 60 + sec))
        }
        _ => None,
    }
}

/// `3600` → `1 h`, `5400` → `1 h 30 min`, `90` → `1 min 30 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut parts = vec![];
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec} s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_follows_ncrontab() {
        let h = Duration::from_secs(3600);
        assert_eq!(longest_gap("0 0 * * * *").unwrap(), h);
        assert_eq!(
            longest_gap("0 */5 * * * *").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(longest_gap("0 30 9 * * *").unwrap(), 24 * h);
        // NCRONTAB's 1-5 is Monday to Friday: the weekend makes a three-day gap.
        assert_eq!(longest_gap("0 0 9 * * 1-5").unwrap(), 72 * h);
        assert_eq!(longest_gap("0 0 9 * * MON-FRI").unwrap(), 72 * h);
        // 0 (and 7) is Sunday.
        assert_eq!(longest_gap("0 0 0 * * 0").unwrap(), 7 * 24 * h);
        assert_eq!(longest_gap("0 0 0 * * 7").unwrap(), 7 * 24 * h);
        assert_eq!(longest_gap("01:30:00").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn a_bad_schedule_is_refused_saying_why() {
        assert!(longest_gap("0 * * * *").unwrap_err().contains("six-field"));
        assert!(longest_gap("0 0 * * * 9").is_err());
        assert!(longest_gap("every hour please").is_err());
    }

    #[test]
    fn durations_read_as_hours_and_minutes() {
        assert_eq!(human(Duration::from_secs(3600)), "1 h");
        assert_eq!(human(Duration::from_secs(25 * 3600 + 120)), "25 h 2 min");
        assert_eq!(human(Duration::from_secs(90)), "1 min 30 s");
    }
}

//! Metric period boundaries, all in UTC.
//!
//! * `current_day` starts at midnight.
//! * `current_week` starts on Sunday at midnight.
//! * `current_month` starts on the 1st at midnight, or, with the
//!   `billing_cycle` month reset, on the day and time of month at which the
//!   company's subscription period started (falling back to the calendar
//!   month when there is no subscription or it starts in the future).
//! * `all_time` (and unknown periods) never reset: both functions return `None`.
//!
//! Day-of-month arithmetic overflows into the next month the way calendar
//! libraries that normalise do: a billing anchor on the 31st resets on
//! 3 March in a non-leap year (31 February normalised).

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

use super::model::{MetricPeriod, MonthReset, Subscription};

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(UtcOffset::UTC)
}

fn midnight(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_time(Time::MIDNIGHT)
}

/// A date built from possibly out-of-range month and day numbers, normalised
/// by carrying the overflow (month 13 is January of the next year, day 31 of
/// a 30-day month is the 1st of the next). `None` only outside the
/// representable range.
fn normalized(year: i32, month: i32, day: i32, time: Time) -> Option<OffsetDateTime> {
    let m0 = month - 1;
    let year = year.checked_add(m0.div_euclid(12))?;
    let month = Month::try_from(u8::try_from(m0.rem_euclid(12) + 1).ok()?).ok()?;
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let date = first.checked_add(Duration::days(i64::from(day) - 1))?;
    Some(date.with_time(time).assume_utc())
}

fn add_months(t: OffsetDateTime, months: i32) -> Option<OffsetDateTime> {
    normalized(
        t.year(),
        i32::from(u8::from(t.month())) + months,
        i32::from(t.day()),
        t.time(),
    )
}

fn month_start(now: OffsetDateTime) -> OffsetDateTime {
    midnight(now).replace_day(1).unwrap_or(now)
}

fn next_month_start(now: OffsetDateTime) -> Option<OffsetDateTime> {
    add_months(month_start(now), 1)
}

/// This month's reset instant for a subscription anchored at `anchor`.
fn anchored(now: OffsetDateTime, anchor: OffsetDateTime) -> Option<OffsetDateTime> {
    normalized(
        now.year(),
        i32::from(u8::from(now.month())),
        i32::from(anchor.day()),
        anchor.time(),
    )
}

/// The start of the current period of a metric, or `None` for periods that
/// never reset.
pub fn period_start(
    period: &MetricPeriod,
    month_reset: &MonthReset,
    subscription: Option<&Subscription>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let now = utc(now);
    match period {
        MetricPeriod::CurrentDay => Some(midnight(now)),
        MetricPeriod::CurrentWeek => {
            let days = i64::from(now.weekday().number_days_from_sunday());
            Some(midnight(now) - Duration::days(days))
        }
        MetricPeriod::CurrentMonth if *month_reset == MonthReset::BillingCycle => {
            billing_start(subscription, now)
        }
        MetricPeriod::CurrentMonth => Some(month_start(now)),
        MetricPeriod::AllTime | MetricPeriod::Other(_) => None,
    }
}

/// The instant the current period of a metric ends and the next begins, or
/// `None` for periods that never reset.
pub fn next_period_start(
    period: &MetricPeriod,
    month_reset: &MonthReset,
    subscription: Option<&Subscription>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let now = utc(now);
    match period {
        MetricPeriod::CurrentDay => Some(midnight(now) + Duration::DAY),
        MetricPeriod::CurrentWeek => {
            let days = 7 - i64::from(now.weekday().number_days_from_sunday());
            Some(midnight(now) + Duration::days(days))
        }
        MetricPeriod::CurrentMonth if *month_reset == MonthReset::BillingCycle => {
            billing_next(subscription, now)
        }
        MetricPeriod::CurrentMonth => next_month_start(now),
        MetricPeriod::AllTime | MetricPeriod::Other(_) => None,
    }
}

fn billing_start(
    subscription: Option<&Subscription>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let Some(sub) = subscription else {
        return Some(month_start(now));
    };
    let start = utc(sub.period_start);
    if start > now {
        return Some(month_start(now));
    }
    let mut reset = anchored(now, start)?;
    if reset > now {
        reset = add_months(reset, -1)?;
    }
    Some(if reset < start { start } else { reset })
}

fn billing_next(
    subscription: Option<&Subscription>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let Some(sub) = subscription else {
        return next_month_start(now);
    };
    let start = utc(sub.period_start);
    let end = utc(sub.period_end);
    if start > now {
        let next_month = next_month_start(now)?;
        return Some(if start > next_month {
            next_month
        } else {
            start
        });
    }
    let mut reset = anchored(now, start)?;
    if reset <= now {
        reset = add_months(reset, 1)?;
    }
    Some(if reset > end { end } else { reset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DAY: MetricPeriod = MetricPeriod::CurrentDay;
    const WEEK: MetricPeriod = MetricPeriod::CurrentWeek;
    const MONTH: MetricPeriod = MetricPeriod::CurrentMonth;
    const FIRST: MonthReset = MonthReset::FirstOfMonth;
    const BILLING: MonthReset = MonthReset::BillingCycle;

    #[test]
    fn day_boundaries() {
        let now = datetime!(2024-03-05 23:59:59.999 UTC);
        assert_eq!(
            period_start(&DAY, &FIRST, None, now),
            Some(datetime!(2024-03-05 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&DAY, &FIRST, None, now),
            Some(datetime!(2024-03-06 0:00 UTC))
        );
        let midnight = datetime!(2024-03-06 0:00 UTC);
        assert_eq!(period_start(&DAY, &FIRST, None, midnight), Some(midnight));
        // Offsets are converted to UTC first.
        let east = datetime!(2024-03-06 01:00 +02:00);
        assert_eq!(
            period_start(&DAY, &FIRST, None, east),
            Some(datetime!(2024-03-05 0:00 UTC))
        );
    }

    #[test]
    fn week_starts_sunday() {
        // 2024-03-03 is a Sunday.
        let sunday = datetime!(2024-03-03 0:00 UTC);
        assert_eq!(period_start(&WEEK, &FIRST, None, sunday), Some(sunday));
        assert_eq!(
            next_period_start(&WEEK, &FIRST, None, sunday),
            Some(datetime!(2024-03-10 0:00 UTC))
        );
        let saturday_night = datetime!(2024-03-02 23:59:59 UTC);
        assert_eq!(
            period_start(&WEEK, &FIRST, None, saturday_night),
            Some(datetime!(2024-02-25 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&WEEK, &FIRST, None, saturday_night),
            Some(sunday)
        );
        let wednesday = datetime!(2024-03-06 12:00 UTC);
        assert_eq!(period_start(&WEEK, &FIRST, None, wednesday), Some(sunday));
    }

    #[test]
    fn calendar_month() {
        let now = datetime!(2024-12-31 23:00 UTC);
        assert_eq!(
            period_start(&MONTH, &FIRST, None, now),
            Some(datetime!(2024-12-01 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&MONTH, &FIRST, None, now),
            Some(datetime!(2025-01-01 0:00 UTC))
        );
        let first = datetime!(2025-01-01 0:00 UTC);
        assert_eq!(period_start(&MONTH, &FIRST, None, first), Some(first));
        // Billing cycle without a subscription falls back to the calendar month.
        assert_eq!(
            period_start(&MONTH, &BILLING, None, now),
            Some(datetime!(2024-12-01 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&MONTH, &BILLING, None, now),
            Some(datetime!(2025-01-01 0:00 UTC))
        );
    }

    #[test]
    fn all_time_never_resets() {
        let now = datetime!(2024-03-05 12:00 UTC);
        let period = MetricPeriod::AllTime;
        assert_eq!(period_start(&period, &FIRST, None, now), None);
        assert_eq!(next_period_start(&period, &FIRST, None, now), None);
        let other = MetricPeriod::from_wire("fortnight");
        assert_eq!(next_period_start(&other, &FIRST, None, now), None);
    }

    #[test]
    fn billing_cycle() {
        let sub = Subscription::new(
            "sub",
            datetime!(2024-01-15 10:00 UTC),
            datetime!(2025-01-15 10:00 UTC),
        );
        let s = Some(&sub);
        // Just before this month's anchor: the period began last month.
        let before = datetime!(2024-03-15 09:59:59 UTC);
        assert_eq!(
            period_start(&MONTH, &BILLING, s, before),
            Some(datetime!(2024-02-15 10:00 UTC))
        );
        assert_eq!(
            next_period_start(&MONTH, &BILLING, s, before),
            Some(datetime!(2024-03-15 10:00 UTC))
        );
        // Exactly at the anchor: a new period begins.
        let at = datetime!(2024-03-15 10:00 UTC);
        assert_eq!(period_start(&MONTH, &BILLING, s, at), Some(at));
        assert_eq!(
            next_period_start(&MONTH, &BILLING, s, at),
            Some(datetime!(2024-04-15 10:00 UTC))
        );
        // In the first cycle, the start is the subscription start.
        let early = datetime!(2024-01-20 0:00 UTC);
        assert_eq!(
            period_start(&MONTH, &BILLING, s, early),
            Some(datetime!(2024-01-15 10:00 UTC))
        );
        // The next reset never passes the end of the billing period.
        let late = datetime!(2024-12-20 0:00 UTC);
        assert_eq!(
            next_period_start(&MONTH, &BILLING, s, late),
            Some(datetime!(2025-01-15 10:00 UTC))
        );
        let short = Subscription::new(
            "s",
            datetime!(2024-01-15 10:00 UTC),
            datetime!(2024-04-01 0:00 UTC),
        );
        let after = datetime!(2024-03-20 0:00 UTC);
        assert_eq!(
            next_period_start(&MONTH, &BILLING, Some(&short), after),
            Some(datetime!(2024-04-01 0:00 UTC))
        );
    }

    #[test]
    fn billing_cycle_future_start_and_overflow() {
        let future = Subscription::new(
            "s",
            datetime!(2024-03-20 0:00 UTC),
            datetime!(2024-04-20 0:00 UTC),
        );
        let now = datetime!(2024-03-05 0:00 UTC);
        assert_eq!(
            period_start(&MONTH, &BILLING, Some(&future), now),
            Some(datetime!(2024-03-01 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&MONTH, &BILLING, Some(&future), now),
            Some(datetime!(2024-03-20 0:00 UTC))
        );
        let far = Subscription::new(
            "s",
            datetime!(2024-06-20 0:00 UTC),
            datetime!(2024-07-20 0:00 UTC),
        );
        assert_eq!(
            next_period_start(&MONTH, &BILLING, Some(&far), now),
            Some(datetime!(2024-04-01 0:00 UTC))
        );
        // An anchor on the 31st normalises in short months.
        let anchor31 = Subscription::new(
            "s",
            datetime!(2023-01-31 0:00 UTC),
            datetime!(2024-01-31 0:00 UTC),
        );
        let feb = datetime!(2023-02-10 0:00 UTC);
        // 31 Feb is 3 Mar; one month earlier is 3 Feb, already past.
        assert_eq!(
            period_start(&MONTH, &BILLING, Some(&anchor31), feb),
            Some(datetime!(2023-02-03 0:00 UTC))
        );
        assert_eq!(
            next_period_start(&MONTH, &BILLING, Some(&anchor31), feb),
            Some(datetime!(2023-03-03 0:00 UTC))
        );
    }
}

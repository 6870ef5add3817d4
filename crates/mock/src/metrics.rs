//! Calendar periods of company metrics (UTC): days start at midnight, weeks
//! on Sunday, months on the 1st.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// When the counter for `period` that contains `t` stops being current;
/// `None` for `all_time` and unknown periods.
pub(crate) fn period_end(period: &str, t: OffsetDateTime) -> Option<OffsetDateTime> {
    let date = t.date();
    let next = match period {
        "current_day" => date.next_day()?,
        "current_week" => {
            let days_to_sunday = 7 - i64::from(date.weekday().number_days_from_sunday());
            date.checked_add(Duration::days(days_to_sunday))?
        }
        "current_month" => first_of_next_month(date)?,
        _ => return None,
    };
    Some(next.with_time(Time::MIDNIGHT).assume_utc())
}

fn first_of_next_month(date: Date) -> Option<Date> {
    let (year, month) = match date.month() {
        Month::December => (date.year() + 1, Month::January),
        m => (date.year(), m.next()),
    };
    Date::from_calendar_date(year, month, 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn period_boundaries() {
        let t = datetime!(2026-12-31 13:00 UTC); // a Thursday
        assert_eq!(
            period_end("current_day", t),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        assert_eq!(
            period_end("current_month", t),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        let week = period_end("current_week", t).unwrap();
        assert_eq!(week.date().weekday(), time::Weekday::Sunday);
        assert_eq!(week, datetime!(2027-01-03 0:00 UTC));
        assert_eq!(period_end("all_time", t), None);
        // On a Sunday the week ends on the following Sunday.
        let sunday = datetime!(2026-11-22 10:00 UTC);
        assert_eq!(
            period_end("current_week", sunday),
            Some(datetime!(2026-11-29 0:00 UTC))
        );
    }
}

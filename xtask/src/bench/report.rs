//! The table of `docs/benchmarks.md`: figures, limits, ratios.

use std::fmt::Write as _;

/// A measured quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// Time per operation, nanoseconds (lower is better).
    Time(f64),
    /// Operations per second (higher is better), with the unit's name.
    Rate(f64, &'static str),
    /// A memory size in bytes (lower is better).
    Bytes(f64),
}

impl Figure {
    /// Cost per operation in the figure's own terms: higher is worse, so
    /// ratios of costs read the same way for every kind of figure.
    fn cost(self) -> f64 {
        match self {
            Figure::Time(ns) => ns,
            Figure::Rate(r, _) => 1.0 / r,
            Figure::Bytes(b) => b,
        }
    }

    fn same_kind(self, other: Figure) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }

    /// How many times `self` costs what `base` costs (`None` for figures of
    /// different kinds or a zero base).
    pub fn ratio_to(self, base: Figure) -> Option<f64> {
        let (a, b) = (self.cost(), base.cost());
        (self.same_kind(base) && b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Figure::Time(ns) if ns < 1_000.0 => write!(f, "{} ns", sig3(ns)),
            Figure::Time(ns) if ns < 1_000_000.0 => write!(f, "{} µs", sig3(ns / 1e3)),
            Figure::Time(ns) => write!(f, "{} ms", sig3(ns / 1e6)),
            Figure::Rate(r, unit) => write!(f, "{} {unit}", thousands(r)),
            Figure::Bytes(b) => write!(f, "{} MiB", sig3(b / (1024.0 * 1024.0))),
        }
    }
}

/// Three significant digits, without exponent.
fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A rounded whole number with thousands separators.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A measured cell: a figure with optional detail, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A figure, with a short remark shown next to it.
    Value(Figure, Option<String>),
    /// Not measured in this run, and why.
    Missing(String),
    /// The scenario has no counterpart on that side, and why.
    NotApplicable(String),
}

impl Cell {
    /// The figure, when there is one.
    pub fn figure(&self) -> Option<Figure> {
        match self {
            Cell::Value(f, _) => Some(*f),
            _ => None,
        }
    }
}

/// What a figure is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// What the limit is (e.g. "raw ring HMAC").
    pub label: String,
    /// Where its figure comes from (a criterion id), if measured.
    pub source: Option<String>,
    /// Its figure, measured in the same run, or a target.
    pub value: Cell,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is measured.
    pub scenario: String,
    /// Where the flagwire figure comes from (a criterion id or a command).
    pub source: String,
    /// flagwire's figure.
    pub flagwire: Cell,
    /// The limit it is compared with, if the scenario has one.
    pub limit: Option<Limit>,
    /// The official Python SDK's figure for the same scenario.
    pub python: Cell,
}

fn cell_text(cell: &Cell, notes: &mut Vec<String>, what: &str) -> String {
    match cell {
        Cell::Value(f, None) => f.to_string(),
        Cell::Value(f, Some(detail)) => format!("{f} ({detail})"),
        Cell::Missing(why) => {
            notes.push(format!("{what}: not available: {why}"));
            format!("n/a [{}]", notes.len())
        }
        Cell::NotApplicable(why) => {
            notes.push(format!("{what}: {why}"));
            format!("— [{}]", notes.len())
        }
    }
}

fn ratio_text(a: Option<Figure>, b: Option<Figure>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => a.ratio_to(b).map_or("—".to_owned(), |r| format!("{r:.2}")),
        _ => "—".to_owned(),
    }
}

/// The table in Markdown, followed by its numbered notes.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut notes = Vec::new();
    let mut out = String::from(
        "| scenario | flagwire | limit | ratio to limit | Python SDK | Python/flagwire |\n\
         |---|---:|---|---:|---:|---:|\n",
    );
    for row in rows {
        let fw = cell_text(
            &row.flagwire,
            &mut notes,
            &format!("{}, flagwire", row.scenario),
        );
        let (limit, ratio) = match &row.limit {
            Some(limit) => {
                let value = cell_text(
                    &limit.value,
                    &mut notes,
                    &format!("{}, limit", row.scenario),
                );
                (
                    format!("{value} ({})", limit.label),
                    ratio_text(row.flagwire.figure(), limit.value.figure()),
                )
            }
            None => ("—".to_owned(), "—".to_owned()),
        };
        let py = cell_text(
            &row.python,
            &mut notes,
            &format!("{}, Python", row.scenario),
        );
        let py_ratio = ratio_text(row.python.figure(), row.flagwire.figure());
        let _ = writeln!(
            out,
            "| {} | {fw} | {limit} | {ratio} | {py} | {py_ratio} |",
            row.scenario
        );
    }
    if !notes.is_empty() {
        out.push('\n');
        for (i, note) in notes.iter().enumerate() {
            let _ = writeln!(out, "{}. {note}", i + 1);
        }
    }
    out
}

/// A plain-text summary for the terminal.
pub fn terminal_summary(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        let show = |c: &Cell| match c {
            Cell::Value(f, _) => f.to_string(),
            Cell::Missing(_) => "n/a".to_owned(),
            Cell::NotApplicable(_) => "-".to_owned(),
        };
        let limit = row
            .limit
            .as_ref()
            .map(|l| format!("{} ({})", show(&l.value), l.label))
            .unwrap_or_else(|| "-".to_owned());
        let ratio = ratio_text(
            row.flagwire.figure(),
            row.limit.as_ref().and_then(|l| l.value.figure()),
        );
        let py_ratio = ratio_text(row.python.figure(), row.flagwire.figure());
        let _ = writeln!(
            out,
            "{}\n    flagwire {} | limit {limit} | x{ratio} | Python {} | Python/flagwire x{py_ratio}",
            row.scenario,
            show(&row.flagwire),
            show(&row.python),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_compare_costs() {
        assert_eq!(Figure::Time(200.0).ratio_to(Figure::Time(100.0)), Some(2.0));
        // Twice the throughput is half the cost.
        let r = Figure::Rate(20_000.0, "req/s")
            .ratio_to(Figure::Rate(10_000.0, "req/s"))
            .unwrap();
        assert!((r - 0.5).abs() < 1e-12);
        assert_eq!(Figure::Bytes(3.0).ratio_to(Figure::Bytes(1.0)), Some(3.0));
        assert_eq!(Figure::Time(1.0).ratio_to(Figure::Bytes(1.0)), None);
        assert_eq!(Figure::Time(1.0).ratio_to(Figure::Time(0.0)), None);
    }

    #[test]
    fn figures_render_with_units() {
        assert_eq!(Figure::Time(812.4).to_string(), "812 ns");
        assert_eq!(Figure::Time(12_345.0).to_string(), "12.3 µs");
        assert_eq!(Figure::Time(1_500_000.0).to_string(), "1.50 ms");
        assert_eq!(
            Figure::Rate(1_234_567.4, "events/s").to_string(),
            "1,234,567 events/s"
        );
        assert_eq!(
            Figure::Bytes(10.0 * 1024.0 * 1024.0).to_string(),
            "10.0 MiB"
        );
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }

    #[test]
    fn table_has_ratios_and_numbered_notes() {
        let rows = vec![
            Row {
                scenario: "verify 1 KiB".to_owned(),
                source: "verify/1KiB/schematic".to_owned(),
                flagwire: Cell::Value(Figure::Time(900.0), None),
                limit: Some(Limit {
                    label: "raw ring HMAC".to_owned(),
                    source: None,
                    value: Cell::Value(Figure::Time(850.0), None),
                }),
                python: Cell::Value(Figure::Time(4_500.0), None),
            },
            Row {
                scenario: "rules".to_owned(),
                source: "rules/x".to_owned(),
                flagwire: Cell::Missing("the bench failed".to_owned()),
                limit: None,
                python: Cell::NotApplicable("no local engine".to_owned()),
            },
        ];
        let md = markdown_table(&rows);
        assert!(
            md.contains(
                "| verify 1 KiB | 900 ns | 850 ns (raw ring HMAC) | 1.06 | 4.50 µs | 5.00 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| rules | n/a [1] | — | — | — [2] | — |"),
            "{md}"
        );
        assert!(
            md.contains("1. rules, flagwire: not available: the bench failed"),
            "{md}"
        );
        assert!(md.contains("2. rules, Python: no local engine"), "{md}");
    }
}

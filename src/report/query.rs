//! Reads one day of reports: calls the six `report_*` SQL functions and the day's totals in
//! one read-only snapshot, keeping each function's own column names and row order.

use std::fmt;

use chrono::NaiveDate;
use postgres::types::Type;
use postgres::{IsolationLevel, Row};

use crate::error::{column, Error, Result};

/// The six reports of contract §7, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    TopProducts,
    TopCountries,
    TopReferrers,
    StorePerformance,
    HourlyProductViews,
    HourlyBrowserOs,
}

/// Every report, in the order they are printed.
pub const REPORTS: [ReportKind; 6] = [
    ReportKind::TopProducts,
    ReportKind::TopCountries,
    ReportKind::TopReferrers,
    ReportKind::StorePerformance,
    ReportKind::HourlyProductViews,
    ReportKind::HourlyBrowserOs,
];

impl ReportKind {
    /// Stable identifier: the JSON key, the CSV `report` column, the HTML section id.
    pub fn key(self) -> &'static str {
        match self {
            ReportKind::TopProducts => "top_products",
            ReportKind::TopCountries => "top_countries",
            ReportKind::TopReferrers => "top_referrers",
            ReportKind::StorePerformance => "store_performance",
            ReportKind::HourlyProductViews => "hourly_product_views",
            ReportKind::HourlyBrowserOs => "hourly_browser_os",
        }
    }

    /// The SQL function in `schema.sql`.
    pub fn function(self) -> &'static str {
        match self {
            ReportKind::TopProducts => "report_top_products",
            ReportKind::TopCountries => "report_top_countries",
            ReportKind::TopReferrers => "report_top_referrers",
            ReportKind::StorePerformance => "report_store_performance",
            ReportKind::HourlyProductViews => "report_hourly_product_views",
            ReportKind::HourlyBrowserOs => "report_hourly_browser_os",
        }
    }

    /// Human title.
    pub fn title(self) -> &'static str {
        match self {
            ReportKind::TopProducts => "Top 10 products by views",
            ReportKind::TopCountries => "Top 10 countries by views",
            ReportKind::TopReferrers => "Top 5 referrer hosts by views",
            ReportKind::StorePerformance => "Store performance by country, ranked by views",
            ReportKind::HourlyProductViews => "Hourly views of the top 10 products (UTC)",
            ReportKind::HourlyBrowserOs => "Hourly views by browser and OS (UTC)",
        }
    }

    /// Whether the report is one series per rank over the hours 0-23.
    pub fn is_hourly(self) -> bool {
        matches!(
            self,
            ReportKind::HourlyProductViews | ReportKind::HourlyBrowserOs
        )
    }

    fn sql(self) -> String {
        let order = if self.is_hourly() {
            "rank, hour"
        } else {
            "rank"
        };
        format!("SELECT * FROM {}($1) ORDER BY {order}", self.function())
    }
}

/// One cell. Text that PostgreSQL returned as NULL is [`Value::Null`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Plain text: NULL is empty, numbers as Rust prints them (shortest round-trip for floats).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// A result column: the SQL function's own name, and whether it holds numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub numeric: bool,
}

/// One report's rows, in the function's order.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Report {
    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The value in `row` of the column called `name` (Null when there is no such column).
    pub fn get<'a>(&self, row: &'a [Value], name: &str) -> &'a Value {
        self.column(name)
            .and_then(|i| row.get(i))
            .unwrap_or(&Value::Null)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// For an hourly report, one [`Series`] per rank in rank order (empty for the others).
    pub fn hourly_series(&self) -> Vec<Series> {
        if !self.kind.is_hourly() {
            return Vec::new();
        }
        let mut series: Vec<Series> = Vec::new();
        for row in &self.rows {
            let rank = self.get(row, "rank").as_i64().unwrap_or(0);
            if series.last().is_none_or(|s| s.rank != rank) {
                let parts = match self.kind {
                    ReportKind::HourlyBrowserOs => vec![
                        self.get(row, "browser").to_string(),
                        self.get(row, "os").to_string(),
                    ],
                    _ => vec![self.get(row, "product_key").to_string()],
                };
                series.push(Series {
                    rank,
                    parts,
                    hours: [0; 24],
                });
            }
            let last = series.last_mut().expect("pushed above");
            let hour = self.get(row, "hour").as_i64().unwrap_or(-1);
            if let Some(slot) = usize::try_from(hour)
                .ok()
                .and_then(|h| last.hours.get_mut(h))
            {
                *slot += self.get(row, "views").as_i64().unwrap_or(0);
            }
        }
        series
    }
}

/// One line of an hourly report: a product, or a browser/OS pair, and its views per UTC hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub rank: i64,
    /// `[product_key]` or `[browser, os]`.
    pub parts: Vec<String>,
    pub hours: [i64; 24],
}

impl Series {
    /// The parts joined with " / ".
    pub fn label(&self) -> String {
        self.parts.join(" / ")
    }

    pub fn total(&self) -> i64 {
        self.hours.iter().sum()
    }
}

/// The day's headline numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Fact rows (product views) that day.
    pub views: i64,
    /// Distinct non-NULL product keys viewed that day.
    pub products: i64,
    /// Dead letters received that UTC day (by `received_at`, not by event time).
    pub dead_letters: i64,
}

/// Everything a report run shows for one day.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: NaiveDate,
    pub totals: Totals,
    /// One per [`REPORTS`] entry, in that order.
    pub reports: Vec<Report>,
}

impl Day {
    pub fn report(&self, kind: ReportKind) -> &Report {
        self.reports
            .iter()
            .find(|r| r.kind == kind)
            .expect("every report kind is loaded")
    }
}

/// Reads the six reports and the totals for `date`, or for the current UTC day (the SQL
/// functions' default, taken once at the start of the snapshot) when `date` is None.
pub fn load(client: &mut postgres::Client, date: Option<NaiveDate>) -> Result<Day> {
    let pg = |what: &str| {
        let context = format!("report: {what}");
        move |e| Error::from_pg(context, e)
    };
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(pg("beginning"))?;
    let date: NaiveDate = match date {
        Some(d) => d,
        None => tx
            .query_one("SELECT (now() AT TIME ZONE 'utc')::date", &[])
            .map_err(pg("reading the current day"))
            .and_then(|row| column(&row, 0, "now()", "date"))?,
    };
    let totals_row = tx
        .query_one(
            "SELECT t.views, t.products, \
                    (SELECT count(*) FROM dead_letter \
                      WHERE received_at >= $1::timestamp AT TIME ZONE 'utc' \
                        AND received_at < ($1 + 1)::timestamp AT TIME ZONE 'utc') \
             FROM report_day_totals($1) t",
            &[&date],
        )
        .map_err(pg("reading the day's totals"))?;
    let totals = Totals {
        views: column(&totals_row, 0, "report_day_totals()", "views")?,
        products: column(&totals_row, 1, "report_day_totals()", "products")?,
        dead_letters: column(&totals_row, 2, "dead_letter", "count(*)")?,
    };
    let mut reports = Vec::with_capacity(REPORTS.len());
    for kind in REPORTS {
        // Prepared first: the statement names the columns even when no row comes back.
        let statement = tx.prepare(&kind.sql()).map_err(pg(kind.function()))?;
        let rows = tx
            .query(&statement, &[&date])
            .map_err(pg(kind.function()))?;
        reports.push(to_report(kind, statement.columns(), &rows)?);
    }
    tx.commit().map_err(pg("ending"))?;
    Ok(Day {
        date,
        totals,
        reports,
    })
}

fn to_report(kind: ReportKind, columns: &[postgres::Column], rows: &[Row]) -> Result<Report> {
    let columns: Vec<Column> = columns
        .iter()
        .map(|c| Column {
            name: c.name().to_owned(),
            numeric: is_numeric(c.type_()),
        })
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(row.len());
        for (i, c) in row.columns().iter().enumerate() {
            values.push(decode(kind, row, i, c.type_())?);
        }
        out.push(values);
    }
    Ok(Report {
        kind,
        columns,
        rows: out,
    })
}

fn is_numeric(t: &Type) -> bool {
    [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
    ]
    .contains(t)
}

fn decode(kind: ReportKind, row: &Row, i: usize, t: &Type) -> Result<Value> {
    let bad = |e: postgres::Error| Error::from_pg(format!("report: {}", kind.function()), e);
    let v = match *t {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map(i64::from)
            .map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(i64::from)
            .map(Value::Int),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map(Value::Int),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(bad)?
            .map(|x| Value::Float(f64::from(x))),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map(Value::Float),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map(Value::Text),
        _ => {
            return Err(Error::fatal(
                format!("report: {}", kind.function()),
                format!(
                    "column {} has unsupported type {t}",
                    row.columns()[i].name()
                ),
            ))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

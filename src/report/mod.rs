//! `streamer report`: the six analytics reports of contract §7 (SQL functions in `schema.sql`)
//! for one UTC day, printed as a terminal table, CSV or JSON, and optionally written as one
//! self-contained HTML page with a chart per report.
//!
//! Layout: [`query`] reads the day from PostgreSQL, [`format`] prints it, [`html`] renders
//! the page, [`live`] serves it as `/dashboard` of the running process. All six reports and the totals are read in one read-only repeatable-read
//! transaction, so they describe the same snapshot and the same day.

pub mod format;
pub mod html;
pub mod live;
pub mod query;

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;

use crate::error::{Error, Result};

pub use query::{Column, Day, Report, ReportKind, Series, Totals, Value, REPORTS};

/// How [`run`] prints the reports on `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned terminal tables, one per report (the hourly ones as one row per hour and one
    /// column per series); an empty report prints "no views on DAY".
    #[default]
    Table,
    /// One CSV block per report (header `report,<columns>`), blocks separated by an empty
    /// line; an empty report is its header alone.
    Csv,
    /// One JSON object: `date`, `totals` and the six reports as arrays of objects.
    Json,
}

/// Reads the six reports for `date` (None: the current UTC day, as the SQL functions'
/// default), prints them on `out` in `format`, and when `html` is given writes the HTML
/// page to that file too.
pub fn run(
    client: &mut postgres::Client,
    date: Option<NaiveDate>,
    format: Format,
    html: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let day = query::load(client, date)?;
    match format {
        Format::Table => format::write_table(&day, out)?,
        Format::Csv => format::write_csv(&day, out)?,
        Format::Json => format::write_json(&day, out)?,
    }
    out.flush()
        .map_err(|e| Error::fatal("report: writing", e))?;
    if let Some(path) = html {
        let page = html::render(&day, chrono::Utc::now())?;
        std::fs::write(path, page)
            .map_err(|e| Error::fatal(format!("report: writing {}", path.display()), e))?;
    }
    Ok(())
}

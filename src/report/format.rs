//! Prints a [`Day`] of reports on a writer: aligned terminal tables (comfy-table), CSV
//! blocks (csv) or one JSON object (serde_json), every format with the same rows and columns.

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::query::{Day, Report, Totals, Value};
use crate::error::{Error, Result};

fn io_err(e: std::io::Error) -> Error {
    Error::fatal("report: writing", e)
}

/// The message printed instead of an empty report.
pub fn empty_message(day: &Day) -> String {
    format!("no views on {}", day.date)
}

/// "1 view" / "2 views".
pub(crate) fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line: the day and its totals.
pub fn headline(day: &Day) -> String {
    let t = &day.totals;
    format!(
        "{} (UTC): {}, {}, {}",
        day.date,
        plural(t.views, "view", "views"),
        plural(t.products, "product", "products"),
        plural(t.dead_letters, "dead letter", "dead letters"),
    )
}

/// A terminal table per report under its title, or "no views on DAY" when it is empty.
pub fn write_table(day: &Day, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{}", headline(day)).map_err(io_err)?;
    for report in &day.reports {
        writeln!(out, "\n{}", report.kind.title()).map_err(io_err)?;
        if report.is_empty() {
            writeln!(out, "{}", empty_message(day)).map_err(io_err)?;
        } else {
            writeln!(out, "{}", table(report)).map_err(io_err)?;
        }
    }
    Ok(())
}

fn table(report: &Report) -> Table {
    if report.kind.is_hourly() {
        return hours_table(report);
    }
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(report.columns.iter().map(|c| c.name.as_str()));
    for row in &report.rows {
        table.add_row(row.iter().map(Value::to_string));
    }
    for (i, c) in report.columns.iter().enumerate() {
        if c.numeric {
            if let Some(col) = table.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    table
}

/// An hourly report turned around: one row per hour, one column per series (header: the
/// product key, or browser and OS on two lines), and a last row of totals.
fn hours_table(report: &Report) -> Table {
    let series = report.hourly_series();
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(
            std::iter::once("hour".to_owned()).chain(series.iter().map(|s| s.parts.join("\n"))),
        );
    for h in 0..24 {
        table.add_row(
            std::iter::once(format!("{h:02}")).chain(series.iter().map(|s| s.hours[h].to_string())),
        );
    }
    table.add_row(
        std::iter::once("total".to_owned()).chain(series.iter().map(|s| s.total().to_string())),
    );
    for i in 1..=series.len() {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// One CSV block per report: a header `report,<columns>` and one line per row, the first
/// field being the report's key; blocks are separated by an empty line. NULL is an empty
/// field. An empty report is its header alone.
pub fn write_csv(day: &Day, out: &mut dyn Write) -> Result<()> {
    let csv_err = |e: csv::Error| Error::fatal("report: writing CSV", e);
    for (i, report) in day.reports.iter().enumerate() {
        if i > 0 {
            writeln!(out).map_err(io_err)?;
        }
        let mut w = csv::WriterBuilder::new().from_writer(&mut *out);
        let header =
            std::iter::once("report").chain(report.columns.iter().map(|c| c.name.as_str()));
        w.write_record(header).map_err(csv_err)?;
        for row in &report.rows {
            let fields = std::iter::once(report.kind.key().to_owned())
                .chain(row.iter().map(Value::to_string));
            w.write_record(fields).map_err(csv_err)?;
        }
        w.flush().map_err(io_err)?;
    }
    Ok(())
}

/// One pretty-printed JSON object: `{"date": "YYYY-MM-DD", "totals": {...}, "top_products":
/// [{"rank": 1, ...}, ...], ...}`, keys of each row in the function's column order, NULL as
/// `null`.
pub fn write_json(day: &Day, out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, &JsonDay(day))
        .map_err(|e| Error::fatal("report: writing JSON", e))?;
    writeln!(out).map_err(io_err)
}

struct JsonDay<'a>(&'a Day);
struct JsonReport<'a>(&'a Report);
struct JsonRow<'a>(&'a Report, &'a [Value]);

impl Serialize for JsonDay<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let day = self.0;
        let mut m = s.serialize_map(Some(2 + day.reports.len()))?;
        m.serialize_entry("date", &day.date.to_string())?;
        m.serialize_entry("totals", &JsonTotals(&day.totals))?;
        for report in &day.reports {
            m.serialize_entry(report.kind.key(), &JsonReport(report))?;
        }
        m.end()
    }
}

struct JsonTotals<'a>(&'a Totals);

impl Serialize for JsonTotals<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("views", &t.views)?;
        m.serialize_entry("products", &t.products)?;
        m.serialize_entry("dead_letters", &t.dead_letters)?;
        m.end()
    }
}

impl Serialize for JsonReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.rows.len()))?;
        for row in &self.0.rows {
            seq.serialize_element(&JsonRow(self.0, row))?;
        }
        seq.end()
    }
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len()))?;
        for (c, v) in self.0.columns.iter().zip(self.1) {
            m.serialize_entry(&c.name, &JsonValue(v))?;
        }
        m.end()
    }
}

struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Int(n) => s.serialize_i64(*n),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

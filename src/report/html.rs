//! The `--html` page: one self-contained HTML document (inline CSS, charts as inline SVG
//! drawn with plotters; no script, font, image or stylesheet is fetched) with a header (day,
//! totals, generation time), a chart and a table per report, and the DB-IP attribution;
//! `/dashboard`'s variant ([`render_live`]) adds a reload and links to the neighbouring days.
//! All text that comes from the database is HTML-escaped here or by plotters' SVG backend.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::format::empty_message;
use super::query::{Day, Report, ReportKind, Value};
use crate::error::{Error, Result};

/// The attribution DB-IP's CC BY 4.0 licence asks for, shown in the page footer.
pub const DBIP_ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0";

/// Chart width in SVG pixels (scaled down by CSS on narrow screens).
const WIDTH: u32 = 960;
const FONT: &str = "sans-serif";
/// Tableau 10: distinguishable, colour-blind friendly enough for up to 10 series.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#f4f5f7;color:#1f2328;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\
header,main,footer{max-width:1040px;margin:0 auto;padding:16px 20px}\
header h1{margin:8px 0 12px;font-size:24px}\
.stats{display:flex;gap:12px;flex-wrap:wrap;margin:0;padding:0;list-style:none}\
.stats li{background:#fff;border:1px solid #d8dce1;border-radius:8px;padding:10px 16px;min-width:150px}\
.stats b{display:block;font-size:22px}\
.generated{color:#59636e;margin:12px 0 0}\
section{background:#fff;border:1px solid #d8dce1;border-radius:8px;margin:0 0 20px;padding:12px 16px}\
section h2{font-size:17px;margin:4px 0 10px}\
.chart svg{display:block;max-width:100%;height:auto}\
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0 10px;padding:0;list-style:none}\
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;font-size:13px;margin-top:6px}\
th,td{border-bottom:1px solid #e4e7eb;padding:3px 8px;text-align:left;white-space:nowrap}\
th{background:#f6f8fa}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
table.hours td,table.hours th{padding:3px 5px}\
footer{color:#59636e;font-size:13px}";

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` → `1,234,567`.
fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Int(n) => group_digits(*n),
        other => other.to_string(),
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::fatal("report: drawing a chart", e)
}

/// What the live page (`/dashboard` of the running process) adds to the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// seconds between reloads (`<meta http-equiv="refresh">`); 0: none
    pub refresh_s: u32,
}

/// The whole page for `day`, stamped with `generated`.
pub fn render(day: &Day, generated: DateTime<Utc>) -> Result<String> {
    render_page(day, generated, None)
}

/// The page as `/dashboard` serves it: reloading itself every `live.refresh_s` seconds, with
/// links to the neighbouring days (relative to the page's own address; nothing is fetched).
pub fn render_live(day: &Day, generated: DateTime<Utc>, live: Live) -> Result<String> {
    render_page(day, generated, Some(live))
}

fn render_page(day: &Day, generated: DateTime<Utc>, live: Option<Live>) -> Result<String> {
    let date = day.date.to_string();
    let t = &day.totals;
    let mut page = String::with_capacity(64 * 1024);
    let refresh = match live {
        Some(Live { refresh_s }) if refresh_s > 0 => {
            format!("<meta http-equiv=\"refresh\" content=\"{refresh_s}\">\n")
        }
        _ => String::new(),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{refresh}\
         <title>streamer report {date}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body data-date=\"{date}\">\n\
         <header>\n<h1>Product views on {date} (UTC)</h1>\n<ul class=\"stats\">\
         <li id=\"total-views\" data-value=\"{}\"><b>{}</b>views</li>\
         <li id=\"total-products\" data-value=\"{}\"><b>{}</b>distinct products</li>\
         <li id=\"total-dead-letters\" data-value=\"{}\"><b>{}</b>dead letters received</li>\
         </ul>\n<p class=\"generated\">Generated {} by streamer {}{}</p>\n</header>\n<main>\n",
        t.views,
        group_digits(t.views),
        t.products,
        group_digits(t.products),
        t.dead_letters,
        group_digits(t.dead_letters),
        generated.format("%Y-%m-%d %H:%M:%S UTC"),
        env!("CARGO_PKG_VERSION"),
        live.map(|l| live_nav(day, l)).unwrap_or_default(),
    );
    for report in &day.reports {
        let _ = write!(
            page,
            "<section id=\"{key}\">\n<h2>{}</h2>\n",
            escape(report.kind.title()),
            key = report.kind.key(),
        );
        let chart = format!("<div class=\"chart\" id=\"chart-{}\">", report.kind.key());
        if report.is_empty() {
            // The chart area itself says why it is blank; no table.
            page.push_str(&chart);
            page.push_str(&inline_svg(empty_chart(&empty_message(day))?));
            page.push_str("</div>\n");
        } else if report.kind.is_hourly() {
            let series: Vec<(String, [i64; 24])> = report
                .hourly_series()
                .iter()
                .map(|s| (truncate(&s.label(), 40), s.hours))
                .collect();
            page.push_str(&chart);
            page.push_str(&inline_svg(line_chart(&series)?));
            page.push_str("</div>\n");
            page.push_str(&legend(&series));
            page.push_str(&hours_table(&series));
        } else {
            let bars = bars(report);
            page.push_str(&chart);
            page.push_str(&inline_svg(bar_chart(&bars)?));
            page.push_str("</div>\n");
            page.push_str(&table(report));
        }
        page.push_str("</section>\n");
    }
    let _ = write!(
        page,
        "</main>\n<footer>\n<p>{}</p>\n</footer>\n</body>\n</html>\n",
        escape(DBIP_ATTRIBUTION)
    );
    Ok(page)
}

/// The live page's line under the header: how often it reloads, and links to the day
/// before, the day after and today.
fn live_nav(day: &Day, live: Live) -> String {
    let link = |d: Option<chrono::NaiveDate>, text: &str| match d {
        Some(d) => format!(
            " · <a id=\"{}\" href=\"?date={d}&amp;refresh={}\">{text}</a>",
            text.replace(' ', "-"),
            live.refresh_s
        ),
        None => String::new(),
    };
    let every = match live.refresh_s {
        0 => String::from(" · not reloading"),
        n => format!(" · reloads every {n} s"),
    };
    format!(
        "{every}{}{}{}",
        link(day.date.pred_opt(), "previous day"),
        link(day.date.succ_opt(), "next day"),
        format_args!(
            " · <a id=\"today\" href=\"?refresh={}\">today</a>",
            live.refresh_s
        ),
    )
}

/// Plotters' SVG document as inline SVG: the namespace declaration is implied in HTML, so it
/// is dropped and the page contains no URL besides the attribution and the data.
fn inline_svg(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// The report's rows as an HTML table (NULL as an empty cell).
fn table(report: &Report) -> String {
    let mut html = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for c in &report.columns {
        let class = if c.numeric { " class=\"num\"" } else { "" };
        let _ = write!(html, "<th{class}>{}</th>", escape(&c.name));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in &report.rows {
        html.push_str("<tr>");
        for (c, v) in report.columns.iter().zip(row) {
            let class = if c.numeric { " class=\"num\"" } else { "" };
            let _ = write!(html, "<td{class}>{}</td>", escape(&cell_text(v)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table></div>\n");
    html
}

/// A bar per row: its label and views.
fn bars(report: &Report) -> Vec<(String, i64)> {
    let text = |row: &[Value], col: &str| report.get(row, col).to_string();
    report
        .rows
        .iter()
        .map(|row| {
            let label = match report.kind {
                ReportKind::TopProducts => {
                    let key = text(row, "product_key");
                    match report.get(row, "name").as_str() {
                        Some(name) if !name.is_empty() => format!("{key} · {name}"),
                        _ => key,
                    }
                }
                ReportKind::TopCountries => text(row, "country_name"),
                ReportKind::TopReferrers => text(row, "referrer_host"),
                ReportKind::StorePerformance => format!(
                    "store {} · {}",
                    text(row, "store_id"),
                    text(row, "country_name")
                ),
                ReportKind::HourlyProductViews | ReportKind::HourlyBrowserOs => text(row, "rank"),
            };
            let views = report.get(row, "views").as_i64().unwrap_or(0);
            (truncate(&label, 42), views)
        })
        .collect()
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The series' colours and labels, below a line chart.
fn legend(series: &[(String, [i64; 24])]) -> String {
    let mut html = String::from("<ul class=\"legend\">");
    for (i, (label, _)) in series.iter().enumerate() {
        let _ = write!(
            html,
            "<li><i style=\"background:{}\"></i>{}</li>",
            hex(color(i)),
            escape(label)
        );
    }
    html.push_str("</ul>\n");
    html
}

/// Series as rows, hours as columns, plus each series' total.
fn hours_table(series: &[(String, [i64; 24])]) -> String {
    let mut html =
        String::from("<div class=\"scroll\"><table class=\"hours\">\n<thead><tr><th>series</th>");
    for h in 0..24 {
        let _ = write!(html, "<th class=\"num\">{h:02}</th>");
    }
    html.push_str("<th class=\"num\">total</th></tr></thead>\n<tbody>\n");
    for (i, (label, hours)) in series.iter().enumerate() {
        let _ = write!(
            html,
            "<tr><td><i style=\"display:inline-block;width:10px;height:10px;margin-right:6px;background:{}\"></i>{}</td>",
            hex(color(i)),
            escape(label)
        );
        for v in hours {
            let _ = write!(html, "<td class=\"num\">{}</td>", group_digits(*v));
        }
        let _ = writeln!(
            html,
            "<td class=\"num\">{}</td></tr>",
            group_digits(hours.iter().sum())
        );
    }
    html.push_str("</tbody>\n</table></div>\n");
    html
}

/// A little headroom above the largest value, so labels fit.
fn axis_max(max: i64) -> i64 {
    (max + max / 8).max(max + 1).max(1)
}

/// Horizontal bars, the first row on top, each labelled with its views.
fn bar_chart(bars: &[(String, i64)]) -> Result<String> {
    let n = bars.len() as u32;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0);
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
    let label_width = (longest as u32 * 7 + 16).clamp(60, 320);
    let height = 70 + 30 * n;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d(
                0i64..axis_max(max),
                (0u32..n.saturating_sub(1)).into_segmented(),
            )
            .map_err(draw_err)?;
        let label_of = |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) if *i < n => bars[(n - 1 - *i) as usize].0.clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .x_labels(8)
            .y_label_formatter(&label_of)
            .x_desc("views")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE)
            .draw()
            .map_err(draw_err)?;
        let fill = PALETTE[0];
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let y = n - 1 - i as u32;
                let mut bar = Rectangle::new(
                    [
                        (0, SegmentValue::Exact(y)),
                        (*v, SegmentValue::Exact(y + 1)),
                    ],
                    fill.filled(),
                );
                bar.set_margin(5, 5, 0, 0);
                bar
            }))
            .map_err(draw_err)?;
        let value_style = TextStyle::from((FONT, 14).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let y = n - 1 - i as u32;
                EmptyElement::at((*v, SegmentValue::CenterOf(y)))
                    + Text::new(v.to_string(), (5, 0), value_style.clone())
            }))
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// One line per series over the hours 0-23, points marked.
fn line_chart(series: &[(String, [i64; 24])]) -> Result<String> {
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .max()
        .unwrap_or(0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0i32..23i32, 0i64..axis_max(max))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_labels(24)
            .y_labels(8)
            .x_desc("hour (UTC)")
            .y_desc("views")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .light_line_style(WHITE)
            .draw()
            .map_err(draw_err)?;
        for (i, (_, hours)) in series.iter().enumerate() {
            let c = color(i);
            let points: Vec<(i32, i64)> = (0..24).map(|h| (h, hours[h as usize])).collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(draw_err)?;
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// A blank chart area that says why it is blank.
fn empty_chart(message: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 80)).into_drawing_area();
        root.fill(&RGBColor(0xfa, 0xfb, 0xfc)).map_err(draw_err)?;
        let style = TextStyle::from((FONT, 18).into_font())
            .color(&RGBColor(0x59, 0x63, 0x6e))
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            message.to_owned(),
            ((WIDTH / 2) as i32, 40),
            style,
        ))
        .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn groups_digits() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(-1234), "-1,234");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("äöü", 3), "äöü");
        assert_eq!(truncate("äöüß", 3), "äö…");
    }
}

//! `/dashboard` of the running process: the `report --html` page of one day, read from
//! PostgreSQL through a short connection of its own per request (never the loaders' pool),
//! reloading itself. Promises: `?date=YYYY-MM-DD` picks the day (default: today, UTC, as
//! the report functions say), `?refresh=N` the seconds between reloads (0: none; default
//! [`DEFAULT_REFRESH_S`]); a bad parameter answers 400 naming it; a PostgreSQL error
//! answers 503 with PostgreSQL's words (never the password), reloading itself like the page.

use chrono::NaiveDate;
use postgres_native_tls::MakeTlsConnector;

use super::html::{self, escape, Live};
use super::query;
use crate::config::PostgresConfig;
use crate::error::{Error, Result};

/// Seconds between reloads unless `?refresh=` says otherwise.
pub const DEFAULT_REFRESH_S: u32 = 10;
/// The longest `?refresh=`.
pub const MAX_REFRESH_S: u32 = 86_400;
/// A dashboard's statements give up after this long (its reports read small rollups).
const STATEMENT_TIMEOUT_MS: u32 = 10_000;

/// One answer: status, body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// None: today (UTC)
    pub date: Option<NaiveDate>,
    pub refresh_s: u32,
}

impl Request {
    /// Parses a query string (`date=2024-05-01&refresh=5`, without the `?`); unknown
    /// parameters are ignored, a bad value is an error message naming the parameter.
    pub fn parse(query: &str) -> std::result::Result<Request, String> {
        let mut r = Request {
            date: None,
            refresh_s: DEFAULT_REFRESH_S,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "date" => {
                    let d = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                        format!("date={}: expected a day as YYYY-MM-DD", shorten(value))
                    })?;
                    r.date = Some(d);
                }
                "refresh" => {
                    r.refresh_s = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= MAX_REFRESH_S)
                        .ok_or_else(|| {
                            format!(
                                "refresh={}: expected seconds from 0 (no reload) to {MAX_REFRESH_S}",
                                shorten(value)
                            )
                        })?;
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// At most 40 characters of a parameter for a message.
fn shorten(v: &str) -> String {
    v.chars().take(40).collect()
}

/// The dashboard's way to PostgreSQL.
pub struct Dashboard {
    pg: postgres::Config,
    tls: MakeTlsConnector,
    /// removed from error text, in case a message ever quoted it
    password: String,
}

impl Dashboard {
    /// From the `[postgres]` settings, as `streamer report` connects (TLS included).
    pub fn new(cfg: &PostgresConfig) -> Result<Dashboard> {
        let mut pg = cfg.pg_config();
        pg.options(&format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
        Ok(Dashboard {
            pg,
            tls: crate::sink::tls::connector(cfg)?,
            password: cfg.password.0.clone(),
        })
    }

    /// The answer to `/dashboard?<query>`.
    pub fn page(&self, query: &str) -> Page {
        let req = match Request::parse(query) {
            Ok(r) => r,
            Err(message) => return message_page(400, "Bad request", &message, 0),
        };
        match self.render(req) {
            Ok(body) => Page {
                status: 200,
                body,
                content_type: HTML,
            },
            Err(e) => {
                let mut text = e.to_string();
                if !self.password.is_empty() {
                    text = text.replace(&self.password, "***");
                }
                log::warn!("dashboard: {text}");
                message_page(503, "PostgreSQL is not answering", &text, req.refresh_s)
            }
        }
    }

    fn render(&self, req: Request) -> Result<String> {
        let mut client = self
            .pg
            .connect(self.tls.clone())
            .map_err(|e| Error::from_pg("dashboard: connecting to PostgreSQL", e))?;
        let day = query::load(&mut client, req.date)?;
        html::render_live(
            &day,
            chrono::Utc::now(),
            Live {
                refresh_s: req.refresh_s,
            },
        )
    }
}

/// A small page saying what went wrong; reloads itself when `refresh_s` > 0.
fn message_page(status: u16, title: &str, message: &str, refresh_s: u32) -> Page {
    let refresh = if refresh_s > 0 {
        format!("<meta http-equiv=\"refresh\" content=\"{refresh_s}\">\n")
    } else {
        String::new()
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{refresh}\
         <title>streamer dashboard: {title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p id=\"error\">{}</p>\n</body>\n</html>\n",
        escape(message)
    );
    Page {
        status,
        body,
        content_type: HTML,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_date_and_refresh() {
        let p = |q: &str| Request::parse(q);
        assert_eq!(
            p(""),
            Ok(Request {
                date: None,
                refresh_s: DEFAULT_REFRESH_S
            })
        );
        assert_eq!(
            p("date=2024-05-01&refresh=0&x=y"),
            Ok(Request {
                date: NaiveDate::from_ymd_opt(2024, 5, 1),
                refresh_s: 0
            })
        );
        for bad in ["date=2024-13-01", "date=yesterday", "date=", "date"] {
            let e = p(bad).unwrap_err();
            assert!(e.starts_with("date="), "{bad}: {e}");
        }
        for bad in ["refresh=-1", "refresh=fast", "refresh=86401"] {
            let e = p(bad).unwrap_err();
            assert!(e.starts_with("refresh="), "{bad}: {e}");
        }
        let long = format!("date={}", "9".repeat(500));
        assert!(p(&long).unwrap_err().len() < 100);
    }

    #[test]
    fn error_pages_escape_and_reload() {
        let page = message_page(503, "PostgreSQL is not answering", "<refused> & gone", 5);
        assert_eq!(page.status, 503);
        assert!(page.body.contains("&lt;refused&gt; &amp; gone"));
        assert!(page.body.contains("content=\"5\""));
        assert!(!message_page(400, "Bad request", "x", 0)
            .body
            .contains("refresh"));
    }
}

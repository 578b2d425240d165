//! One `fact_sales` row as the transform produces it. Every text column lives in one
//! buffer, read through accessors: one allocation per row instead of one per column
//! (the loader's allocator time was a quarter of its CPU with a `String` per column).

use chrono::{NaiveDate, NaiveTime};
use std::borrow::Cow;
use std::fmt;

/// How the transform fills a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// computed from other fields (a key, a hash)
    Computed,
    /// from the event's field of that JSON key, by a rule of its own in the transform
    Own,
    /// the event's field of that JSON key as text: a string as it is, a number or
    /// boolean as its JSON text, an object or array as compact JSON (the "other text
    /// columns" of the contract)
    Text,
}

/// Where a column ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// a column of `fact_sales` of the same name (type `text`)
    FactSales,
    /// only in a dimension (`dim_location.ip_address`, `dim_user_agent.user_agent`)
    Dimension,
}

/// The fact's text columns, declared once: everything about a column (its name, the
/// JSON key it comes from, how the transform fills it, where it is stored, its accessor)
/// is generated from this table, and `schema.sql` is checked against it (tests below).
macro_rules! text_columns {
    (@key) => { None };
    (@key $json:literal) => { Some($json) };
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal, json [$($json:literal)?], $rule:ident, $stored:ident
            $(, get $get:ident)?;
    )*) => {
        /// The text columns of a fact, in buffer order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Col {
            $( $(#[doc = $doc])* $variant, )*
        }

        /// How many text columns a fact has.
        pub const TEXT_COLUMNS: usize = [$(Col::$variant),*].len();

        impl Col {
            /// Every column, in buffer order.
            pub const ALL: [Col; TEXT_COLUMNS] = [$(Col::$variant),*];

            /// The column's name: its `fact_sales` column, or for a dimension-only
            /// column the field's.
            pub const fn name(self) -> &'static str {
                match self { $(Col::$variant => $name,)* }
            }

            /// The event's JSON key it comes from (None: computed).
            pub const fn json_key(self) -> Option<&'static str> {
                match self { $(Col::$variant => text_columns!(@key $($json)?),)* }
            }

            /// The column a JSON key of the event fills (exact, case-sensitive).
            pub fn of_json_key(key: &str) -> Option<Col> {
                match key {
                    $($($json => Some(Col::$variant),)?)*
                    _ => None,
                }
            }

            /// How the transform fills it.
            pub const fn rule(self) -> Rule {
                match self { $(Col::$variant => Rule::$rule,)* }
            }

            /// Where it is stored.
            pub const fn stored(self) -> Stored {
                match self { $(Col::$variant => Stored::$stored,)* }
            }
        }

        impl Fact {
            $($(
                #[doc = concat!("The `", $name, "` column (None: NULL).")]
                pub fn $get(&self) -> Option<&str> {
                    self.get(Col::$variant)
                }
            )?)*
        }
    };
}

text_columns! {
    /// lowercase hex SHA-256 of `id` followed by `product_id` as text
    SalesKey = "sales_key", json [], Computed, FactSales;
    /// the event's `id` (a non-empty string)
    EventId = "event_id", json ["id"], Own, FactSales;
    /// the event's `_id`
    DocId = "doc_id", json ["_id"], Text, FactSales, get doc_id;
    /// raw `ip` as text (for `dim_location.ip_address`); None when absent or empty
    Ip = "ip", json ["ip"], Own, Dimension, get ip;
    /// lowercase hex SHA-256 of `ip`; None exactly when `ip` is None
    IpKey = "ip_key", json [], Computed, FactSales, get ip_key;
    /// raw `user_agent` text; None when absent or empty
    UserAgent = "user_agent", json ["user_agent"], Own, Dimension, get user_agent;
    /// lowercase hex SHA-256 of `user_agent`; None exactly when `user_agent` is None
    UserAgentKey = "user_agent_key", json [], Computed, FactSales, get user_agent_key;
    /// `product_id` as text; None when absent, null or the empty string
    ProductKey = "product_key", json ["product_id"], Own, FactSales, get product_key;
    /// host of `referrer_url` (see [`super::referrer_host`])
    ReferrerUrl = "referrer_url", json ["referrer_url"], Own, FactSales, get referrer_url;
    /// compact JSON of `option` as received
    Option = "option", json ["option"], Own, FactSales, get option;
    Resolution = "resolution", json ["resolution"], Text, FactSales, get resolution;
    UserIdDb = "user_id_db", json ["user_id_db"], Text, FactSales, get user_id_db;
    DeviceId = "device_id", json ["device_id"], Text, FactSales, get device_id;
    ApiVersion = "api_version", json ["api_version"], Text, FactSales, get api_version;
    StoreId = "store_id", json ["store_id"], Text, FactSales, get store_id;
    LocalTime = "local_time", json ["local_time"], Text, FactSales, get local_time;
    ShowRecommendation = "show_recommendation", json ["show_recommendation"], Text,
        FactSales, get show_recommendation;
    CurrentUrl = "current_url", json ["current_url"], Text, FactSales, get current_url;
    EmailAddress = "email_address", json ["email_address"], Text, FactSales,
        get email_address;
    Recommendation = "recommendation", json ["recommendation"], Text, FactSales,
        get recommendation;
    UtmSource = "utm_source", json ["utm_source"], Text, FactSales, get utm_source;
    UtmMedium = "utm_medium", json ["utm_medium"], Text, FactSales, get utm_medium;
    Collection = "collection", json ["collection"], Text, FactSales, get collection;
}

/// The columns `fact_sales` has besides the text ones, in the order the loader writes
/// them after those: the event time as epoch seconds, UTC date, UTC time of day.
pub const TIME_COLUMNS: [&str; 3] = ["time_stamp", "full_date", "full_time"];

/// One `fact_sales` row, plus the raw values the dimension writers need. Two facts are
/// equal exactly when every column is (the buffer's layout follows from the values).
#[derive(Clone, PartialEq, Eq)]
pub struct Fact {
    /// the text columns, concatenated in [`Col::ALL`] order
    text: Box<str>,
    /// where each column ends in `text` (it starts where the previous one ends); 32 bits,
    /// which makes a fact 128 bytes instead of 224 (tens of thousands are in flight)
    ends: [u32; TEXT_COLUMNS],
    /// bit `c` set: column `c` is NULL
    nulls: u32,
    /// the first 128 bits of `sales_key` (see [`Fact::key_prefix`])
    key_prefix: u128,
    /// the first 128 bits of `ip_key` (0 without one; see [`Fact::ip_key_prefix`])
    ip_prefix: u128,
    /// epoch seconds
    pub time_stamp: i64,
    /// `time_stamp` as a UTC calendar date (years 1-9999)
    pub full_date: NaiveDate,
    /// `time_stamp` as a UTC time of day, second precision
    pub full_time: NaiveTime,
}

/// The text columns of a fact under construction, each None (NULL) or its text.
pub(super) type Columns<'a> = [Option<Cow<'a, str>>; TEXT_COLUMNS];

impl Fact {
    /// A fact of these columns and times (`sales_key` and `event_id` must be Some, and
    /// `key_prefix` / `ip_prefix` the first 128 bits of the digests `sales_key` / `ip_key`
    /// spell); None when the text columns together exceed 4 GiB (a Kafka message cannot
    /// be that large).
    pub fn new(
        columns: &Columns<'_>,
        (key_prefix, ip_prefix): (u128, u128),
        time_stamp: i64,
        full_date: NaiveDate,
        full_time: NaiveTime,
    ) -> Option<Fact> {
        let len: usize = columns.iter().flatten().map(|c| c.len()).sum();
        u32::try_from(len).ok()?;
        let mut text = String::with_capacity(len);
        let mut ends = [0; TEXT_COLUMNS];
        let mut nulls = 0;
        for (i, column) in columns.iter().enumerate() {
            match column {
                Some(value) => text.push_str(value),
                None => nulls |= 1 << i,
            }
            ends[i] = u32::try_from(text.len()).ok()?;
        }
        Some(Fact {
            text: text.into_boxed_str(),
            ends,
            nulls,
            key_prefix,
            ip_prefix,
            time_stamp,
            full_date,
            full_time,
        })
    }

    /// One text column (None: NULL).
    pub fn get(&self, col: Col) -> Option<&str> {
        let i = col as usize;
        if self.nulls & (1 << i) != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// Lowercase hex SHA-256 of `id` followed by `product_id` as text.
    pub fn sales_key(&self) -> &str {
        self.get(Col::SalesKey).unwrap_or_default()
    }

    /// The first 128 bits of the SHA-256 `sales_key` spells in hex, as a number: ordered as
    /// the keys' text is (lowercase hex digits sort as their values), and kept in the fact
    /// itself, so that sorting, claiming and remembering a batch's keys do not read each
    /// fact's text (the loader's passes over a batch's keys missed the cache on every
    /// fact). Two keys sharing them are two SHA-256 digests sharing 128 bits.
    pub fn key_prefix(&self) -> u128 {
        self.key_prefix
    }

    /// The first 128 bits of the SHA-256 `ip_key` spells (None without an `ip_key`), for
    /// the same reason: the loaders' cache of committed addresses is keyed by them.
    pub fn ip_key_prefix(&self) -> Option<u128> {
        // from the NULL bit, not the text
        (self.nulls & (1 << Col::IpKey as usize) == 0).then_some(self.ip_prefix)
    }

    /// The event's `id`.
    pub fn event_id(&self) -> &str {
        self.get(Col::EventId).unwrap_or_default()
    }
}

impl fmt::Debug for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Fact");
        for col in Col::ALL {
            s.field(col.name(), &self.get(col));
        }
        s.field("time_stamp", &self.time_stamp)
            .field("full_date", &self.full_date)
            .field("full_time", &self.full_time)
            .finish()
    }
}

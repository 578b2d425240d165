//! One `fact_sales` row as the transform produces it. Every text column lives in one
//! buffer, read through accessors: one allocation per row instead of one per column
//! (the loader's allocator time was a quarter of its CPU with a `String` per column).

use chrono::{NaiveDate, NaiveTime};
use std::borrow::Cow;
use std::fmt;

/// The text columns of a fact, in buffer order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// lowercase hex SHA-256 of `id` followed by `product_id` as text
    SalesKey,
    /// the event's `id`
    EventId,
    /// the event's `_id`
    DocId,
    /// raw `ip` as text (for `dim_location.ip_address`); None when absent or empty
    Ip,
    /// lowercase hex SHA-256 of `ip`; None exactly when `ip` is None
    IpKey,
    /// raw `user_agent` text; None when absent or empty
    UserAgent,
    /// lowercase hex SHA-256 of `user_agent`; None exactly when `user_agent` is None
    UserAgentKey,
    /// `product_id` as text; None when absent, null or the empty string
    ProductKey,
    /// host of `referrer_url` (see [`super::referrer_host`])
    ReferrerUrl,
    /// compact JSON of `option` as received
    Option,
    /// this and the remaining columns: SPEC 5 "other text columns"
    Resolution,
    UserIdDb,
    DeviceId,
    ApiVersion,
    StoreId,
    LocalTime,
    ShowRecommendation,
    CurrentUrl,
    EmailAddress,
    Recommendation,
    UtmSource,
    UtmMedium,
    Collection,
}

/// How many text columns a fact has.
pub const TEXT_COLUMNS: usize = 23;

impl Col {
    /// Every column, in buffer order.
    pub const ALL: [Col; TEXT_COLUMNS] = [
        Col::SalesKey,
        Col::EventId,
        Col::DocId,
        Col::Ip,
        Col::IpKey,
        Col::UserAgent,
        Col::UserAgentKey,
        Col::ProductKey,
        Col::ReferrerUrl,
        Col::Option,
        Col::Resolution,
        Col::UserIdDb,
        Col::DeviceId,
        Col::ApiVersion,
        Col::StoreId,
        Col::LocalTime,
        Col::ShowRecommendation,
        Col::CurrentUrl,
        Col::EmailAddress,
        Col::Recommendation,
        Col::UtmSource,
        Col::UtmMedium,
        Col::Collection,
    ];

    /// The field's name (the `fact_sales` column, except `ip` and `user_agent`, which
    /// go to the dimensions).
    pub fn name(self) -> &'static str {
        match self {
            Col::SalesKey => "sales_key",
            Col::EventId => "event_id",
            Col::DocId => "doc_id",
            Col::Ip => "ip",
            Col::IpKey => "ip_key",
            Col::UserAgent => "user_agent",
            Col::UserAgentKey => "user_agent_key",
            Col::ProductKey => "product_key",
            Col::ReferrerUrl => "referrer_url",
            Col::Option => "option",
            Col::Resolution => "resolution",
            Col::UserIdDb => "user_id_db",
            Col::DeviceId => "device_id",
            Col::ApiVersion => "api_version",
            Col::StoreId => "store_id",
            Col::LocalTime => "local_time",
            Col::ShowRecommendation => "show_recommendation",
            Col::CurrentUrl => "current_url",
            Col::EmailAddress => "email_address",
            Col::Recommendation => "recommendation",
            Col::UtmSource => "utm_source",
            Col::UtmMedium => "utm_medium",
            Col::Collection => "collection",
        }
    }
}

/// One `fact_sales` row, plus the raw values the dimension writers need. Two facts are
/// equal exactly when every column is (the buffer's layout follows from the values).
#[derive(Clone, PartialEq, Eq)]
pub struct Fact {
    /// the text columns, concatenated in [`Col::ALL`] order
    text: Box<str>,
    /// where each column ends in `text` (it starts where the previous one ends)
    ends: [usize; TEXT_COLUMNS],
    /// bit `c` set: column `c` is NULL
    nulls: u32,
    /// epoch seconds
    pub time_stamp: i64,
    /// `time_stamp` as a UTC calendar date (years 1-9999)
    pub full_date: NaiveDate,
    /// `time_stamp` as a UTC time of day, second precision
    pub full_time: NaiveTime,
}

/// The text columns of a fact under construction, each None (NULL) or its text.
pub type Columns<'a> = [Option<Cow<'a, str>>; TEXT_COLUMNS];

/// Named accessors, one per nullable column.
macro_rules! nullable {
    ($($name:ident => $col:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($name), "` column (None: NULL).")]
            pub fn $name(&self) -> Option<&str> {
                self.get(Col::$col)
            }
        )*
    };
}

impl Fact {
    /// A fact of these columns and times (`sales_key` and `event_id` must be Some).
    pub fn new(
        columns: &Columns<'_>,
        time_stamp: i64,
        full_date: NaiveDate,
        full_time: NaiveTime,
    ) -> Fact {
        let len = columns.iter().flatten().map(|c| c.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = [0; TEXT_COLUMNS];
        let mut nulls = 0;
        for (i, column) in columns.iter().enumerate() {
            match column {
                Some(value) => text.push_str(value),
                None => nulls |= 1 << i,
            }
            ends[i] = text.len();
        }
        Fact {
            text: text.into_boxed_str(),
            ends,
            nulls,
            time_stamp,
            full_date,
            full_time,
        }
    }

    /// One text column (None: NULL).
    pub fn get(&self, col: Col) -> Option<&str> {
        let i = col as usize;
        if self.nulls & (1 << i) != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..self.ends[i])
    }

    /// Lowercase hex SHA-256 of `id` followed by `product_id` as text.
    pub fn sales_key(&self) -> &str {
        self.get(Col::SalesKey).unwrap_or_default()
    }

    /// The event's `id`.
    pub fn event_id(&self) -> &str {
        self.get(Col::EventId).unwrap_or_default()
    }

    nullable! {
        doc_id => DocId,
        ip => Ip,
        ip_key => IpKey,
        user_agent => UserAgent,
        user_agent_key => UserAgentKey,
        product_key => ProductKey,
        referrer_url => ReferrerUrl,
        option => Option,
        resolution => Resolution,
        user_id_db => UserIdDb,
        device_id => DeviceId,
        api_version => ApiVersion,
        store_id => StoreId,
        local_time => LocalTime,
        show_recommendation => ShowRecommendation,
        current_url => CurrentUrl,
        email_address => EmailAddress,
        recommendation => Recommendation,
        utm_source => UtmSource,
        utm_medium => UtmMedium,
        collection => Collection,
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

//! Products from event URLs: owns [`SHOP_LANGUAGES`], the one table mapping shop domains to
//! language codes; promises that [`product_url`] drops the query string and fragment and
//! that a host which is not a listed shop domain (or a subdomain of one) has no language.

/// Shop domain → ISO 639-1 language code of the site. A host matches a domain when it is
/// that domain or a subdomain of it (`www.glamira.de`, `m.glamira.de`); `glamira.com.au`
/// therefore never matches `glamira.com`. Multilingual countries get the language of the
/// site's default pages: `.ch` → German (majority language), `.be` → French (an
/// assumption: Belgium also speaks Dutch), `.ca` → English, `.no` → `nb` (Bokmål, what
/// Norwegian sites are written in). Generic and English-speaking domains → `en`.
pub const SHOP_LANGUAGES: &[(&str, &str)] = &[
    ("glamira.com", "en"),
    ("glamira.co.uk", "en"),
    ("glamira.ie", "en"),
    ("glamira.com.au", "en"),
    ("glamira.co.nz", "en"),
    ("glamira.ca", "en"),
    ("glamira.in", "en"),
    ("glamira.com.sg", "en"),
    ("glamira.co.za", "en"),
    ("glamira.de", "de"),
    ("glamira.at", "de"),
    ("glamira.ch", "de"),
    ("glamira.fr", "fr"),
    ("glamira.be", "fr"),
    ("glamira.it", "it"),
    ("glamira.es", "es"),
    ("glamira.com.mx", "es"),
    ("glamira.cl", "es"),
    ("glamira.com.co", "es"),
    ("glamira.pe", "es"),
    ("glamira.com.ar", "es"),
    ("glamira.pt", "pt"),
    ("glamira.com.br", "pt"),
    ("glamira.nl", "nl"),
    ("glamira.pl", "pl"),
    ("glamira.se", "sv"),
    ("glamira.dk", "da"),
    ("glamira.fi", "fi"),
    ("glamira.no", "nb"),
    ("glamira.cz", "cs"),
    ("glamira.sk", "sk"),
    ("glamira.hu", "hu"),
    ("glamira.ro", "ro"),
    ("glamira.bg", "bg"),
    ("glamira.gr", "el"),
    ("glamira.hr", "hr"),
    ("glamira.si", "sl"),
    ("glamira.rs", "sr"),
    ("glamira.lt", "lt"),
    ("glamira.lv", "lv"),
    ("glamira.ee", "et"),
    ("glamira.com.tr", "tr"),
    ("glamira.jp", "ja"),
    ("glamira.vn", "vi"),
];

/// `current_url` without query string or fragment, and the shop domain's language code.
pub fn product_url(current_url: &str) -> (String, Option<&'static str>) {
    let url = current_url.trim();
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let language = host(url).and_then(|h| language_for_host(&h));
    (url.to_owned(), language)
}

/// Language code of a shop host (case-insensitive, port and trailing dot ignored).
pub fn language_for_host(host: &str) -> Option<&'static str> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.split(':').next().unwrap_or_default();
    SHOP_LANGUAGES.iter().find_map(|&(domain, language)| {
        let matches = host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.'));
        matches.then_some(language)
    })
}

/// Host part of a URL with or without a scheme (`https://h/p`, `//h/p`, `h/p`), userinfo
/// removed; `None` when empty.
fn host(url: &str) -> Option<String> {
    let rest = url.split_once("//").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '\\']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_fragment_are_stripped() {
        let (url, lang) = product_url(
            "https://www.glamira.de/glamira-ring-saphira.html?alloy=white-585&diamond=sapphire#reviews",
        );
        assert_eq!(url, "https://www.glamira.de/glamira-ring-saphira.html");
        assert_eq!(lang, Some("de"));
        assert_eq!(
            product_url("https://www.glamira.fr/bague.html#top").0,
            "https://www.glamira.fr/bague.html"
        );
        assert_eq!(
            product_url("https://www.glamira.fr/bague.html?").0,
            "https://www.glamira.fr/bague.html"
        );
        assert_eq!(
            product_url("https://www.glamira.fr/bague.html").0,
            "https://www.glamira.fr/bague.html"
        );
        assert_eq!(product_url(""), (String::new(), None));
    }

    #[test]
    fn shop_domains_map_to_languages() {
        for (url, expected) in [
            ("https://www.glamira.de/x.html", "de"),
            ("https://www.glamira.fr/x.html", "fr"),
            ("https://www.glamira.co.uk/x.html", "en"),
            ("https://www.glamira.com/x.html", "en"),
            ("https://www.glamira.com.au/x.html", "en"),
            ("https://www.glamira.com.mx/x.html", "es"),
            ("https://www.glamira.com.br/x.html", "pt"),
            ("https://www.glamira.it/x.html", "it"),
            ("https://www.glamira.se/x.html", "sv"),
            ("https://www.glamira.dk/x.html", "da"),
            ("https://www.glamira.gr/x.html", "el"),
            ("https://www.glamira.si/x.html", "sl"),
            ("https://www.glamira.cz/x.html", "cs"),
            ("https://www.glamira.at/x.html", "de"),
            ("https://www.glamira.ch/x.html", "de"),
            ("https://www.glamira.jp/x.html", "ja"),
            ("https://www.glamira.no/x.html", "nb"),
            ("http://glamira.nl/x.html", "nl"),
            ("https://m.glamira.pl/x.html", "pl"),
            ("HTTPS://WWW.GLAMIRA.ES/X.HTML", "es"),
            ("https://www.glamira.de:443/x.html", "de"),
            ("https://www.glamira.de./x.html", "de"),
            ("https://user@www.glamira.de/x.html", "de"),
            ("//www.glamira.de/x.html", "de"),
            ("www.glamira.de/x.html", "de"),
            ("https://www.glamira.de?q=1", "de"),
        ] {
            assert_eq!(product_url(url).1, Some(expected), "{url}");
        }
    }

    #[test]
    fn unknown_and_lookalike_domains_have_no_language() {
        for url in [
            "https://www.example.com/x.html",
            "https://www.glamira.xyz/x.html",
            "https://notglamira.de/x.html",
            "https://glamira.de.evil.com/x.html",
            "https://www.google.com/search?q=glamira.de",
            "/relative/path.html",
            "not a url",
            "https://",
        ] {
            assert_eq!(product_url(url).1, None, "{url}");
        }
    }

    #[test]
    fn table_is_consistent() {
        for (i, (domain, language)) in SHOP_LANGUAGES.iter().enumerate() {
            assert_eq!(*domain, domain.to_ascii_lowercase());
            assert!(language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()));
            assert!(
                SHOP_LANGUAGES[..i].iter().all(|(d, _)| d != domain),
                "{domain} listed twice"
            );
            assert_eq!(language_for_host(domain), Some(*language));
        }
    }
}

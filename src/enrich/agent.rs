//! User agents with woothee: owns the mapping from a woothee result to [`Agent`]; promises
//! that woothee's "UNKNOWN" and empty values become `None`, and that an empty, `-` or
//! unrecognised agent gives an all-`None` [`Agent`] (no `misc` guess: woothee's `misc`
//! means a recognised tool such as curl or wget, not "anything else").

use woothee::parser::Parser;
use woothee::woothee::VALUE_UNKNOWN;

use super::Agent;

/// Parse one user agent string (uncached; [`super::Enricher::agent`] caches).
pub fn parse(user_agent: &str) -> Agent {
    match Parser::new().parse(user_agent) {
        None => Agent::default(),
        Some(r) => Agent {
            browser: known(r.name),
            browser_version: known(r.version),
            os: known(r.os),
            os_version: known(&r.os_version),
            device_category: known(r.category),
        },
    }
}

fn known(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value == VALUE_UNKNOWN {
        None
    } else {
        Some(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(
        browser: Option<&str>,
        browser_version: Option<&str>,
        os: Option<&str>,
        os_version: Option<&str>,
        category: Option<&str>,
    ) -> Agent {
        Agent {
            browser: browser.map(str::to_owned),
            browser_version: browser_version.map(str::to_owned),
            os: os.map(str::to_owned),
            os_version: os_version.map(str::to_owned),
            device_category: category.map(str::to_owned),
        }
    }

    // Expected values follow woothee's dataset: Windows "NT 10.0" is labelled "Windows 10"
    // (version kept as "NT 10.0"), macOS is "Mac OSX" with `_` turned into `.`, iPad is in
    // the "smartphone" category, Chromium Edge is recognised by "Edg/", Chromium Opera by
    // "OPR/", IE 11 by "Trident/" with the version from "rv:".

    #[test]
    fn chrome_on_windows() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(
            parse(ua),
            agent(
                Some("Chrome"),
                Some("120.0.0.0"),
                Some("Windows 10"),
                Some("NT 10.0"),
                Some("pc")
            )
        );
    }

    #[test]
    fn chrome_on_macos() {
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(
            parse(ua),
            agent(
                Some("Chrome"),
                Some("120.0.0.0"),
                Some("Mac OSX"),
                Some("10.15.7"),
                Some("pc")
            )
        );
    }

    #[test]
    fn edge_on_windows() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
        assert_eq!(
            parse(ua),
            agent(
                Some("Edge"),
                Some("120.0.2210.91"),
                Some("Windows 10"),
                Some("NT 10.0"),
                Some("pc")
            )
        );
    }

    #[test]
    fn edge_on_macos() {
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
        let a = parse(ua);
        assert_eq!(a.browser.as_deref(), Some("Edge"));
        assert_eq!(a.os.as_deref(), Some("Mac OSX"));
    }

    #[test]
    fn firefox_on_windows_and_macos() {
        let win =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(
            parse(win),
            agent(
                Some("Firefox"),
                Some("121.0"),
                Some("Windows 10"),
                Some("NT 10.0"),
                Some("pc")
            )
        );
        let mac =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(
            parse(mac),
            agent(
                Some("Firefox"),
                Some("121.0"),
                Some("Mac OSX"),
                Some("10.15"),
                Some("pc")
            )
        );
    }

    #[test]
    fn safari_on_macos() {
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";
        assert_eq!(
            parse(ua),
            agent(
                Some("Safari"),
                Some("17.1"),
                Some("Mac OSX"),
                Some("10.15.7"),
                Some("pc")
            )
        );
    }

    #[test]
    fn safari_on_windows() {
        // Safari 5.1 was the last Windows release.
        let ua = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534.57.2 (KHTML, like Gecko) Version/5.1.7 Safari/534.57.2";
        assert_eq!(
            parse(ua),
            agent(
                Some("Safari"),
                Some("5.1.7"),
                Some("Windows 7"),
                Some("NT 6.1"),
                Some("pc")
            )
        );
    }

    #[test]
    fn safari_on_iphone() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
        assert_eq!(
            parse(ua),
            agent(
                Some("Safari"),
                Some("17.1.2"),
                Some("iPhone"),
                Some("17.1.2"),
                Some("smartphone")
            )
        );
    }

    #[test]
    fn safari_on_ipad() {
        let ua = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
        assert_eq!(
            parse(ua),
            agent(
                Some("Safari"),
                Some("16.6"),
                Some("iPad"),
                Some("16.6"),
                Some("smartphone")
            )
        );
    }

    #[test]
    fn chrome_on_android() {
        let ua = "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36";
        assert_eq!(
            parse(ua),
            agent(
                Some("Chrome"),
                Some("120.0.6099.144"),
                Some("Android"),
                Some("13"),
                Some("smartphone")
            )
        );
    }

    #[test]
    fn opera_chromium_and_presto() {
        let opr = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0";
        assert_eq!(
            parse(opr),
            agent(
                Some("Opera"),
                Some("106.0.0.0"),
                Some("Windows 10"),
                Some("NT 10.0"),
                Some("pc")
            )
        );
        let presto = "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18";
        assert_eq!(
            parse(presto),
            agent(
                Some("Opera"),
                Some("12.18"),
                Some("Windows 7"),
                Some("NT 6.1"),
                Some("pc")
            )
        );
    }

    #[test]
    fn internet_explorer_11() {
        let ua = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko";
        assert_eq!(
            parse(ua),
            agent(
                Some("Internet Explorer"),
                Some("11.0"),
                Some("Windows 7"),
                Some("NT 6.1"),
                Some("pc")
            )
        );
    }

    #[test]
    fn googlebot_is_a_crawler() {
        let desktop = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(
            parse(desktop),
            agent(Some("Googlebot"), None, None, None, Some("crawler"))
        );
        // The smartphone crawler looks like Android Chrome but is still the crawler.
        let mobile = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let a = parse(mobile);
        assert_eq!(a.browser.as_deref(), Some("Googlebot"));
        assert_eq!(a.device_category.as_deref(), Some("crawler"));
    }

    #[test]
    fn command_line_tool_is_misc() {
        // woothee files curl, wget, Java, PHP... under "HTTP Library", the tool as version.
        let a = parse("curl/8.5.0");
        assert_eq!(a.browser.as_deref(), Some("HTTP Library"));
        assert_eq!(a.browser_version.as_deref(), Some("curl"));
        assert_eq!(a.device_category.as_deref(), Some("misc"));
    }

    #[test]
    fn empty_dash_and_garbage_are_all_none() {
        assert_eq!(parse(""), Agent::default());
        assert_eq!(parse("-"), Agent::default());
        assert_eq!(parse("qwertyuiop asdfghjkl 12345"), Agent::default());
        assert_eq!(parse("\u{0}\u{1}\u{fffd}%%%"), Agent::default());
    }
}

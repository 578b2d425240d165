//! Allocation-free JSON writing for the generator: an object writer, integers, hex and
//! UTC date-times straight into a byte buffer (core::fmt costs several times more).

/// A JSON object being written field by field into a cleared buffer.
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.clear();
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes `"k":` and hands out the buffer for the value.
    pub(super) fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A string value from trusted parts (no quote, backslash or control character).
    pub(super) fn text(&mut self, k: &str, parts: &[&str]) {
        let out = self.key(k);
        out.push(b'"');
        for p in parts {
            out.extend_from_slice(p.as_bytes());
        }
        out.push(b'"');
    }

    /// A string value escaped as JSON requires.
    pub(super) fn escaped(&mut self, k: &str, v: &str) {
        json_str(self.key(k), v);
    }

    /// A literal value: `true`, `false`, `null`, a number's text.
    pub(super) fn raw(&mut self, k: &str, v: &str) {
        self.key(k).extend_from_slice(v.as_bytes());
    }

    pub(super) fn int(&mut self, k: &str, v: i64) {
        push_i64(self.key(k), v);
    }

    /// An integer as a string of digits.
    pub(super) fn int_text(&mut self, k: &str, v: i64) {
        let out = self.key(k);
        out.push(b'"');
        push_i64(out, v);
        out.push(b'"');
    }

    pub(super) fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes `s` as a JSON string literal (control characters, including U+0000, escaped).
pub(super) fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

pub(super) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub(super) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// The low `digits` hex digits of `v`, lowercase, zero-padded.
pub(super) fn push_hex(out: &mut Vec<u8>, v: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 15) as usize]);
    }
}

fn push2(out: &mut Vec<u8>, n: i64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `YYYY-MM-DD<sep>HH:MM:SS` of epoch seconds `t` (years 0-9999; Hinnant's algorithm).
pub(super) fn push_datetime(out: &mut Vec<u8>, t: i64, sep: u8) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = (yoe + era * 400 + i64::from(m <= 2)).clamp(0, 9999);
    push2(out, y / 100);
    push2(out, y % 100);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(sep);
    push2(out, secs / 3600);
    out.push(b':');
    push2(out, secs / 60 % 60);
    out.push(b':');
    push2(out, secs % 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_matches_chrono() {
        for t in [
            0i64,
            1_714_521_600,
            1_591_266_092,
            951_782_400,
            4_102_444_799,
            -86_401,
        ] {
            let want = chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            let mut out = Vec::new();
            push_datetime(&mut out, t, b' ');
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn numbers_hex_and_escapes() {
        let mut out = Vec::new();
        push_i64(&mut out, -120);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_hex(&mut out, 0xabc, 6);
        out.push(b' ');
        json_str(&mut out, "a\"b\\c\0d\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"-120 18446744073709551615 000abc "a\"b\\c\u0000d\u000a""#
        );
    }
}

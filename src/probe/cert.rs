//! The one field of a server certificate the report shows that rustls does
//! not: its expiry (`notAfter`). Read straight from the DER, with no X.509
//! library: an X.509 parser (with its ASN.1 and OID tables) was about 200 KB
//! of the agent's binary for this one date, and every KB of the binary is
//! resident on every node (docs/benchmarks.md, "Release profile").
//!
//! The input comes from whatever answered the TLS handshake, before and
//! whether or not its chain verifies: every read is bounded, nothing panics,
//! and anything unexpected is `None` (no expiry shown), never an error.

/// The certificate's `notAfter` as Unix seconds, or `None` when the bytes are
/// not a certificate whose validity reads as RFC 5280 writes it (UTCTime
/// `YYMMDDHHMMSSZ` for years 1950–2049, GeneralizedTime `YYYYMMDDHHMMSSZ`).
pub fn not_after(der: &[u8]) -> Option<i64> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
    // OPTIONAL, serialNumber, signature, issuer, validity, ... }, ... }
    let (cert, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(cert, SEQUENCE)?;
    if tbs.first() == Some(&EXPLICIT_0) {
        tbs = skip(tbs)?; // version
    }
    tbs = skip(tbs)?; // serialNumber
    tbs = skip(tbs)?; // signature algorithm
    tbs = skip(tbs)?; // issuer
    let (validity, _) = element(tbs, SEQUENCE)?;
    let after_not_before = skip(validity)?;
    let (&tag, _) = after_not_before.split_first()?;
    let (time, _) = element(after_not_before, tag)?;
    match tag {
        UTC_TIME => {
            let (yy, rest) = two_digits(time)?;
            let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
            date_time(year, rest)
        }
        GENERALIZED_TIME => {
            let (hi, rest) = two_digits(time)?;
            let (lo, rest) = two_digits(rest)?;
            date_time(hi * 100 + lo, rest)
        }
        _ => None,
    }
}

const SEQUENCE: u8 = 0x30;
const EXPLICIT_0: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element at the start of `input` if its tag is `tag`,
/// and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: up to four length bytes (no certificate is near 4 GiB).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// What follows the element at the start of `input`, whatever its tag
/// (single-byte tags only, as every field before the validity has).
fn skip(input: &[u8]) -> Option<&[u8]> {
    let (&tag, _) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    element(input, tag).map(|(_, rest)| rest)
}

fn two_digits(s: &[u8]) -> Option<(i32, &[u8])> {
    match s {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', rest @ ..] => Some((i32::from(a - b'0') * 10 + i32::from(b - b'0'), rest)),
        _ => None,
    }
}

/// `MMDDHHMMSSZ` after the year, in Unix seconds.
fn date_time(year: i32, s: &[u8]) -> Option<i64> {
    let (month, s) = two_digits(s)?;
    let (day, s) = two_digits(s)?;
    let (hour, s) = two_digits(s)?;
    let (minute, s) = two_digits(s)?;
    let (second, s) = two_digits(s)?;
    if s != b"Z" {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let at = date
        .with_hms(
            u8::try_from(hour).ok()?,
            u8::try_from(minute).ok()?,
            u8::try_from(second).ok()?,
        )
        .ok()?;
    Some(at.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's outer layers around a validity of `not_after`.
    fn cert_with(not_after: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 0x80 {
                v.push(body.len() as u8);
            } else {
                v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            v.extend_from_slice(body);
            v
        }
        let validity = [tlv(UTC_TIME, b"200101000000Z"), not_after.to_vec()].concat();
        let tbs = [
            tlv(EXPLICIT_0, &tlv(0x02, &[2])),
            tlv(0x02, &[1; 20]),
            tlv(SEQUENCE, &tlv(0x06, &[0x2a, 0x86, 0x48])),
            tlv(SEQUENCE, &[0x31; 200]), // a long-form issuer
            tlv(SEQUENCE, &validity),
        ]
        .concat();
        tlv(SEQUENCE, &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[])].concat())
    }

    #[test]
    fn both_time_forms_and_the_utc_century_rule() {
        for (time, tag, want) in [
            (&b"491231235959Z"[..], UTC_TIME, Some(2_524_607_999)),
            (b"500101000000Z", UTC_TIME, Some(-631_152_000)),
            (b"20500101000000Z", GENERALIZED_TIME, Some(2_524_608_000)),
            (b"99991231235959Z", GENERALIZED_TIME, Some(253_402_300_799)),
            // Not as RFC 5280 writes it: no seconds, an offset, a bad date.
            (b"4912312359Z", UTC_TIME, None),
            (b"491231235959+0100", UTC_TIME, None),
            (b"490230000000Z", UTC_TIME, None),
            (b"491231245959Z", UTC_TIME, None),
            (b"20500101000000Z", UTC_TIME, None),
            (b"491231235959Z", 0x04, None),
        ] {
            let field = [&[tag, time.len() as u8][..], time].concat();
            assert_eq!(not_after(&cert_with(&field)), want, "{}", String::from_utf8_lossy(time));
        }
    }

    #[test]
    fn every_truncation_is_none_not_a_panic() {
        let whole = cert_with(&[&[UTC_TIME, 13][..], b"491231235959Z"].concat());
        assert!(not_after(&whole).is_some());
        for n in 0..whole.len() {
            assert_eq!(not_after(&whole[..n]), None, "cut at {n}");
        }
        // A length that claims more than there is, and a five-byte length.
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]), None);
    }
}

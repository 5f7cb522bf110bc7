//! Small byte-level field readers shared by the extractor: hex hashes, integers, `key=value`.

use std::str::FromStr;

use memchr::memmem;

/// The bytes after `prefix`, if `s` starts with it.
#[inline]
pub(crate) fn strip<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    s.strip_prefix(prefix)
}

/// The bytes after the first occurrence of `pat`.
#[inline]
pub(crate) fn after<'a>(s: &'a [u8], pat: &[u8]) -> Option<&'a [u8]> {
    memmem::find(s, pat).map(|i| &s[i + pat.len()..])
}

/// A 64-digit hex hash at the start of `s` (bitcoind's display order), not followed by
/// another hex digit.
#[inline]
pub(crate) fn hash<T: FromStr>(s: &[u8]) -> Option<T> {
    let h = s.get(..64)?;
    if s.get(64).is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    std::str::from_utf8(h).ok()?.parse().ok()
}

/// The decimal integer at the start of `s` and the bytes after it.
#[inline]
pub(crate) fn uint(s: &[u8]) -> Option<(u64, &[u8])> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = s[..n]
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
    Some((v, &s[n..]))
}

/// The integer value of `key` (`peer=`, `height=`) anywhere in `s`.
#[inline]
pub(crate) fn field_uint(s: &[u8], key: &[u8]) -> Option<u64> {
    uint(after(s, key)?).map(|(v, _)| v)
}

/// A decimal number like `1039.51` at the start of `s`, and the bytes after it.
#[inline]
pub(crate) fn decimal(s: &[u8]) -> Option<(f64, &[u8])> {
    let n = s
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.' || **b == b'-')
        .count();
    let v: f64 = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    v.is_finite().then_some((v, &s[n..]))
}

/// Lossy UTF-8 copy.
#[inline]
pub(crate) fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// `reason, detail` → (reason, Some(detail)); a trailing ` (code N)` is dropped from either.
pub(crate) fn reason_detail(s: &[u8]) -> (String, Option<String>) {
    let s = trim_code(trim_end(s));
    match memmem::find(s, b", ") {
        Some(i) => {
            let detail = trim_code(&s[i + 2..]);
            (text(&s[..i]), (!detail.is_empty()).then(|| text(detail)))
        }
        None => (text(s), None),
    }
}

/// Drops a trailing ` (code N)` (Core before 0.20 appended the reject code).
pub(crate) fn trim_code(s: &[u8]) -> &[u8] {
    if s.ends_with(b")") {
        if let Some(i) = memmem::rfind(s, b" (code ") {
            let inner = &s[i + 7..s.len() - 1];
            if !inner.is_empty() && inner.iter().all(u8::is_ascii_digit) {
                return &s[..i];
            }
        }
    }
    s
}

/// Drops trailing whitespace.
pub(crate) fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    &s[..s.len() - n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_their_reject_code_and_keep_their_detail() {
        assert_eq!(
            reason_detail(b"bad-cb-amount (code 16)"),
            ("bad-cb-amount".into(), None)
        );
        assert_eq!(
            reason_detail(b"bad-cb-amount, coinbase pays too much (actual=5 vs limit=4)"),
            (
                "bad-cb-amount".into(),
                Some("coinbase pays too much (actual=5 vs limit=4)".into())
            )
        );
        assert_eq!(
            reason_detail(b"non-final (code 64)"),
            ("non-final".into(), None)
        );
    }

    #[test]
    fn numbers_and_fields_read_from_bytes() {
        assert_eq!(uint(b"123 x"), Some((123, &b" x"[..])));
        assert_eq!(field_uint(b"a height=7 peer=12", b"peer="), Some(12));
        assert_eq!(decimal(b"1039.51ms").map(|(v, _)| v), Some(1039.51));
        assert_eq!(uint(b"x"), None);
    }
}

//! Just enough DER: take a certificate apart and put it back together, write the small
//! structures openssl has no builder for (QC statements), read RSASSA-PSS parameters. Every
//! reader is bounds-checked and returns `None` on malformed input.

/// Splits the first TLV off `der`: (whole element, rest).
pub fn split_first(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&_tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    der.split_at_checked(header.checked_add(len)?)
}

/// The content of the TLV at the start of `der`.
pub fn content(der: &[u8]) -> Option<&[u8]> {
    let (element, _) = split_first(der)?;
    let header = element.len() - content_len(element)?;
    element.get(header..)
}

fn content_len(element: &[u8]) -> Option<usize> {
    let first = *element.get(1)?;
    Some(if first < 0x80 {
        usize::from(first)
    } else {
        element.len() - 2 - usize::from(first & 0x7f)
    })
}

/// Encodes a TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// DER of an OBJECT IDENTIFIER given as arcs.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut chunk = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    };
    match arcs {
        [a, b, rest @ ..] => {
            push(a * 40 + b);
            rest.iter().for_each(|v| push(*v));
        }
        [a] => push(a * 40),
        [] => {}
    }
    tlv(0x06, &body)
}

/// The elements inside a constructed TLV's content, in order; `None` if any is malformed.
pub fn elements(mut content: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (element, rest) = split_first(content)?;
        out.push(element);
        content = rest;
    }
    Some(out)
}

/// The tag byte of a TLV.
pub fn tag(element: &[u8]) -> Option<u8> {
    element.first().copied()
}

/// Dotted string of an OBJECT IDENTIFIER element.
pub fn oid_string(element: &[u8]) -> Option<String> {
    if tag(element)? != 0x06 {
        return None;
    }
    let body = content(element)?;
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in body.iter().enumerate() {
        value = value.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == body.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A small non-negative INTEGER element.
pub fn small_uint(element: &[u8]) -> Option<u64> {
    if tag(element)? != 0x02 {
        return None;
    }
    let body = content(element)?;
    if body.is_empty() || body.len() > 8 || body.first()? & 0x80 != 0 {
        return None;
    }
    Some(body.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }:
/// returns the first two elements (with their headers).
pub fn split_certificate(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = content(cert)?;
    let (tbs, rest) = split_first(body)?;
    let (alg, _) = split_first(rest)?;
    Some((tbs, alg))
}

/// Puts a certificate together from its parts and a new signature.
pub fn assemble_certificate(tbs: &[u8], alg: &[u8], signature: &[u8]) -> Vec<u8> {
    let bits = [&[0u8][..], signature].concat();
    tlv(0x30, &[tbs, alg, &tlv(0x03, &bits)].concat())
}

/// The arcs of a dotted OID string (`None` unless at least two numeric arcs).
pub fn parse_oid(dotted: &str) -> Option<Vec<u64>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    (arcs.len() >= 2 && arcs.first().is_some_and(|a| *a <= 2)).then_some(arcs)
}

/// DER INTEGER of the unsigned big-endian `bytes` (leading zeros dropped, a 0x00 added where
/// the top bit is set).
pub fn uint(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    let mut body = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(significant);
    tlv(0x02, &body)
}

/// DER GeneralizedTime (`YYYYMMDDHHMMSSZ`, UTC, whole seconds).
pub fn generalized_time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, text.as_bytes())
}

/// RFC 5280 Time: UTCTime up to 2049, GeneralizedTime from 2050.
pub fn x509_time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.year() >= 2050 || t.year() < 1950 {
        return generalized_time(t);
    }
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x17, text.as_bytes())
}

/// An X.509 Extension: `SEQUENCE { extnID, critical (only when true), extnValue }`.
pub fn extension(arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut body = oid(arcs);
    if critical {
        body.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    body.extend(tlv(0x04, value));
    tlv(0x30, &body)
}

/// The contents of the BIT STRING `subjectPublicKey` of a SubjectPublicKeyInfo (what a
/// key identifier or an OCSP key hash is computed over).
pub fn spki_key_bits(spki: &[u8]) -> Option<&[u8]> {
    let parts = elements(content(spki)?)?;
    let bits = parts.get(1)?;
    if tag(bits)? != 0x03 {
        return None;
    }
    content(bits)?.get(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode_like_the_standard_says() {
        // 1.2.840.10045.3.1.7 (P-256)
        assert_eq!(
            oid(&[1, 2, 840, 10045, 3, 1, 7]),
            [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        );
        // 0.4.0.1862.1.1 (QcCompliance)
        assert_eq!(
            oid(&[0, 4, 0, 1862, 1, 1]),
            [0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01]
        );
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![0xabu8; 300];
        let element = tlv(0x04, &content);
        assert_eq!(&element[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(super::content(&element).unwrap(), &content[..]);
        let (first, rest) = split_first(&[element.clone(), vec![0x05, 0x00]].concat())
            .map(|(a, b)| (a.to_vec(), b.to_vec()))
            .unwrap();
        assert_eq!(first, element);
        assert_eq!(rest, vec![0x05, 0x00]);
    }

    #[test]
    fn oids_and_integers_read_back() {
        let element = oid(&[1, 2, 840, 113549, 1, 1, 10]);
        assert_eq!(oid_string(&element).unwrap(), "1.2.840.113549.1.1.10");
        assert_eq!(
            oid_string(&oid(&[0, 4, 0, 1862, 1, 1])).unwrap(),
            "0.4.0.1862.1.1"
        );
        assert_eq!(small_uint(&[0x02, 0x01, 0x20]), Some(32));
        assert_eq!(small_uint(&[0x02, 0x01, 0x80]), None, "negative");
        assert_eq!(oid_string(&[0x06, 0x01, 0x86]), None, "unterminated arc");
        let seq = tlv(0x30, &[oid(&[1, 2]), vec![0x05, 0x00]].concat());
        assert_eq!(elements(content(&seq).unwrap()).unwrap().len(), 2);
    }

    #[test]
    fn integers_times_and_dotted_oids_encode() {
        assert_eq!(uint(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(uint(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[]), [0x02, 0x01, 0x00]);
        let t = time::macros::datetime!(2026-12-01 23:05:09 UTC);
        assert_eq!(generalized_time(t), tlv(0x18, b"20261201230509Z"));
        assert_eq!(x509_time(t), tlv(0x17, b"261201230509Z"));
        let late = time::macros::datetime!(2051-01-02 03:04:05 UTC);
        assert_eq!(x509_time(late), tlv(0x18, b"20510102030405Z"));
        assert_eq!(
            parse_oid("0.4.0.194112.1.2"),
            Some(vec![0, 4, 0, 194112, 1, 2])
        );
        assert_eq!(parse_oid("1"), None);
        assert_eq!(parse_oid("1.x.3"), None);
        assert_eq!(parse_oid("7.1"), None);
    }

    #[test]
    fn truncated_input_is_refused() {
        assert!(split_first(&[0x30, 0x05, 0x01]).is_none());
        assert!(split_first(&[0x30]).is_none());
        assert!(split_certificate(&[0x30, 0x00]).is_none());
    }
}

//! Reading the messages a Maildir holds, as the loopback SMTP server of scripts/test and
//! scripts/dev stores them (scripts/smtp-maildir.py): every message in `<dir>/new/`, and a copy
//! per recipient in `<dir>/by-rcpt/<address, lower-case>/new/`. For the tests and the bench's
//! provisioner, which read a subscriber's setup link and sealed envelope from there; the
//! gateway itself never reads mail.
//!
//! The MIME reading covers what sigillo sends (text/plain in quoted-printable or base64,
//! multipart/mixed with base64 attachments); it is not a general MIME parser.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use super::Attachment;

/// One stored message, decoded.
#[derive(Debug, Clone)]
pub struct StoredMail {
    /// The file it was read from.
    pub path: PathBuf,
    /// The top-level headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// The text/plain part, decoded.
    pub text: String,
    pub attachments: Vec<Attachment>,
}

impl StoredMail {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The first `https://` or `http://` link in the text that contains `needle`.
    pub fn link_containing(&self, needle: &str) -> Option<String> {
        self.text
            .split_whitespace()
            .find(|w| (w.starts_with("https://") || w.starts_with("http://")) && w.contains(needle))
            .map(str::to_owned)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The folder the server files `recipient`'s copies in.
pub fn recipient_dir(maildir: &Path, recipient: &str) -> PathBuf {
    maildir.join("by-rcpt").join(recipient.to_lowercase())
}

/// Every message of `dir` (a Maildir: its `new/` and `cur/`), oldest first.
pub fn read_dir(dir: &Path) -> Vec<StoredMail> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            files.push((modified, entry.path()));
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, path)| {
            let raw = std::fs::read(&path).ok()?;
            let mut mail = parse(&raw);
            mail.path = path;
            Some(mail)
        })
        .collect()
}

/// The messages sent to `recipient`, oldest first.
pub fn messages_for(maildir: &Path, recipient: &str) -> Vec<StoredMail> {
    read_dir(&recipient_dir(maildir, recipient))
}

/// Polls `recipient`'s folder until a message satisfies `wanted` (the newest such one), or
/// `within` has passed (`None`).
pub async fn wait_for(
    maildir: &Path,
    recipient: &str,
    within: Duration,
    wanted: impl Fn(&StoredMail) -> bool,
) -> Option<StoredMail> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = messages_for(maildir, recipient)
            .into_iter()
            .rev()
            .find(|m| wanted(m))
        {
            return Some(found);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Splits a header block from its body; headers unfolded.
fn split(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match raw.find("\n\n") {
        Some(i) => (
            raw.get(..i).unwrap_or_default(),
            raw.get(i + 2..).unwrap_or_default(),
        ),
        None => (raw, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

/// The value of parameter `name` of a header such as `Content-Type`, also when it is split
/// and/or percent-encoded as RFC 2231 allows (`name*0="…"; name*1*=utf-8''…`), as lettre does
/// with long file names.
fn param(value: &str, name: &str) -> Option<String> {
    let mut pieces: Vec<(usize, String)> = Vec::new();
    for p in value.split(';').skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().trim_matches('"');
        let Some(rest) = k.strip_prefix(&name.to_ascii_lowercase()) else {
            continue;
        };
        let (rest, extended) = match rest.strip_suffix('*') {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let index = match rest {
            "" => 0,
            r => match r.strip_prefix('*').and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => continue,
            },
        };
        let text = if extended {
            // charset'language'percent-encoded (the prefix only on the first piece).
            let encoded = v.splitn(3, '\'').last().unwrap_or(v);
            percent_decode(encoded)
        } else {
            v.to_owned()
        };
        pieces.push((index, text));
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|(i, _)| *i);
    Some(pieces.into_iter().map(|(_, t)| t).collect())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode(body: &str, encoding: Option<&str>) -> Vec<u8> {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("base64") => {
            let compact: String = body.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default()
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.as_bytes().to_vec(),
    }
}

fn decode_qp(text: &str) -> Vec<u8> {
    let bytes = text.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Decodes one stored message.
pub fn parse(raw: &[u8]) -> StoredMail {
    let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (headers, body) = split(&raw);
    let mut mail = StoredMail {
        path: PathBuf::new(),
        headers: Vec::new(),
        text: String::new(),
        attachments: Vec::new(),
    };
    add_part(&mut mail, &headers, body);
    mail.headers = headers;
    mail
}

fn add_part(mail: &mut StoredMail, headers: &[(String, String)], body: &str) {
    let content_type = header(headers, "Content-Type").unwrap_or("text/plain");
    let encoding = header(headers, "Content-Transfer-Encoding");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let Some(boundary) = param(content_type, "boundary") else {
            return;
        };
        let delimiter = format!("--{boundary}");
        for part in body.split(delimiter.as_str()).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (part_headers, part_body) = split(part);
            add_part(mail, &part_headers, part_body);
        }
        return;
    }
    let disposition = header(headers, "Content-Disposition").unwrap_or_default();
    let filename = param(disposition, "filename").or_else(|| param(content_type, "name"));
    let content = decode(body, encoding);
    match filename {
        Some(filename)
            if disposition.to_ascii_lowercase().starts_with("attachment")
                || !content_type.to_ascii_lowercase().starts_with("text/") =>
        {
            mail.attachments.push(Attachment {
                filename,
                content_type: content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                content,
            })
        }
        _ => mail.text.push_str(&String::from_utf8_lossy(&content)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_message_gives_its_text_and_attachment() {
        let raw = "Subject: La busta\r\nTo: a@example.org\r\nContent-Type: multipart/mixed;\r\n boundary=\"XyZ\"\r\n\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nPer l=E2=80=99attivazione=\r\n vedi sotto\r\n--XyZ\r\nContent-Disposition: attachment; filename=\"busta-0a.pdf\"\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0y\r\nLjA=\r\n--XyZ--\r\n";
        let mail = parse(raw.as_bytes());
        assert_eq!(mail.header("subject"), Some("La busta"));
        assert!(
            mail.text.contains("Per l\u{2019}attivazione vedi sotto"),
            "{}",
            mail.text
        );
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].filename, "busta-0a.pdf");
        assert_eq!(mail.attachments[0].content_type, "application/pdf");
        assert_eq!(mail.attachments[0].content, b"%PDF-2.0");
    }

    #[test]
    fn split_and_encoded_file_names_are_joined() {
        assert_eq!(
            param(
                "attachment; filename*0=\"busta-6519D87072F758EC\"; filename*1=\"CC.pdf\"",
                "filename"
            )
            .as_deref(),
            Some("busta-6519D87072F758ECCC.pdf")
        );
        assert_eq!(
            param(
                "attachment; filename*=utf-8''busta%20%C3%A8.pdf",
                "filename"
            )
            .as_deref(),
            Some("busta è.pdf")
        );
        assert_eq!(param("attachment; filenames=x", "filename"), None);
    }

    #[test]
    fn a_single_part_message_and_its_link() {
        let raw = "Subject: x\nContent-Transfer-Encoding: quoted-printable\n\nApri\nhttps://portal.example/portal/setup?token=3Dabc\n";
        let mail = parse(raw.as_bytes());
        assert_eq!(
            mail.link_containing("/portal/setup").as_deref(),
            Some("https://portal.example/portal/setup?token=abc")
        );
        assert!(mail.attachments.is_empty());
    }
}

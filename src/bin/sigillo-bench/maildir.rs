//! Reading the loopback SMTP server's Maildir (scripts/smtp-maildir.py), which also files
//! every message under `by-rcpt/<address>/new/`: the provisioner polls one small folder per
//! subscriber. A message is decoded as far as lettre writes them: a text/plain part in
//! quoted-printable (or 7bit), attachments in base64, one multipart/mixed level.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::Result;

/// One decoded attachment.
pub struct Attachment {
    pub content_type: String,
    pub content: Vec<u8>,
}

/// One decoded message.
pub struct Mail {
    pub text: String,
    pub attachments: Vec<Attachment>,
}

/// The files of the messages to `address` (new/ and cur/), oldest name first.
pub fn files_to(maildir: &Path, address: &str) -> Vec<PathBuf> {
    let folder = maildir.join("by-rcpt").join(address.to_ascii_lowercase());
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(folder.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
}

/// Headers (unfolded, names lower-case) and body of a MIME entity.
fn split(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = entity.split_once("\n\n").unwrap_or((entity, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// A parameter (`boundary`, …) of a header value.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_qp(text: &str) -> Vec<u8> {
    let bytes = text.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'=', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn decode(headers: &[(String, String)], body: &str) -> Result<Vec<u8>> {
    match header(headers, "content-transfer-encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => Ok(STANDARD.decode(body.split_whitespace().collect::<String>())?),
        "quoted-printable" => Ok(decode_qp(body)),
        _ => Ok(body.as_bytes().to_vec()),
    }
}

/// Reads and decodes the message in `path`.
pub fn read(path: &Path) -> Result<Mail> {
    let raw = std::fs::read_to_string(path)?.replace("\r\n", "\n");
    let (headers, body) = split(&raw);
    let content_type = header(&headers, "content-type");
    let mut mail = Mail {
        text: String::new(),
        attachments: Vec::new(),
    };
    let Some(boundary) = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/")
        .then(|| param(content_type, "boundary"))
        .flatten()
    else {
        mail.text = String::from_utf8_lossy(&decode(&headers, body)?).into_owned();
        return Ok(mail);
    };
    let delimiter = format!("--{boundary}");
    for part in body.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (headers, body) = split(part.trim_start_matches('\n'));
        let kind = header(&headers, "content-type")
            .split(';')
            .next()
            .unwrap_or("text/plain")
            .trim()
            .to_ascii_lowercase();
        let content = decode(&headers, body.strip_suffix('\n').unwrap_or(body))?;
        if kind == "text/plain" && mail.text.is_empty() {
            mail.text = String::from_utf8_lossy(&content).into_owned();
        } else {
            mail.attachments.push(Attachment {
                content_type: kind,
                content,
            });
        }
    }
    Ok(mail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_multipart_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let pdf = STANDARD.encode(b"%PDF-2.0 x");
        std::fs::write(
            &path,
            format!(
                "Subject: x\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n\r\n--b1\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                 a=3Db long =\r\nline\r\n--b1\r\nContent-Type: application/pdf\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b1--\r\n"
            ),
        )
        .unwrap();
        let mail = read(&path).unwrap();
        assert_eq!(mail.text, "a=b long line");
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].content_type, "application/pdf");
        assert_eq!(mail.attachments[0].content, b"%PDF-2.0 x");
    }
}

//! The letter inside the envelope: its words in Italian and English, and their layout on one
//! A4 page as a PDF content stream.
//!
//! The fonts are three of the standard 14 (Helvetica, Helvetica-Bold, Courier-Bold) with
//! WinAnsiEncoding, not embedded. PDF 2.0 deprecates unembedded standard fonts, but every reader
//! still carries them, and embedding a font file would make each envelope some hundred KB
//! bigger for no gain in what the subscriber reads. The three values a reader takes back
//! ([`super::open`]) are each drawn inside a marked-content sequence of their own tag
//! (`/SigilloPuk`, `/SigilloEmergencyCode`, `/SigilloSerial`), so they are found without
//! guessing from the layout; the tags do not change what viewers show or extract.

use time::Date;

use super::Letter;
use crate::mail::Locale;

/// A4 in points (rounded), and the page margins.
pub const PAGE_WIDTH: u32 = 595;
pub const PAGE_HEIGHT: u32 = 842;
const MARGIN: f32 = 64.0;
const TEXT_WIDTH: f32 = PAGE_WIDTH as f32 - 2.0 * MARGIN;

/// The resource names of the fonts in the page's /Resources (see `pdf.rs`).
pub const FONTS: &[(&str, &str)] = &[
    ("F1", "Helvetica"),
    ("F2", "Helvetica-Bold"),
    ("F3", "Courier-Bold"),
];

pub const TAG_PUK: &str = "SigilloPuk";
pub const TAG_EMERGENCY: &str = "SigilloEmergencyCode";
pub const TAG_SERIAL: &str = "SigilloSerial";

/// The words of one language.
struct Words {
    title: &'static str,
    subtitle: &'static str,
    holder: &'static str,
    user_id: &'static str,
    credential: &'static str,
    serial: &'static str,
    issued: &'static str,
    puk: &'static str,
    puk_use: &'static str,
    emergency: &'static str,
    emergency_use: &'static str,
    emergency_replaces: &'static str,
    nobody_asks: &'static str,
    keep: &'static str,
    months: [&'static str; 12],
}

const IT: Words = Words {
    title: "Busta cifrata",
    subtitle: "I codici riservati della sua firma remota",
    holder: "Titolare",
    user_id: "Identificativo utente",
    credential: "Credenziale",
    serial: "Numero di serie del certificato",
    issued: "Data di emissione",
    puk: "PUK",
    puk_use: "Il PUK serve per attivare la credenziale di firma e per sbloccare il PIN \
              quando è bloccato da troppi tentativi errati.",
    emergency: "Codice di emergenza",
    emergency_use: "Il codice di emergenza serve per sospendere subito tutte le sue \
                    credenziali di firma senza accedere al portale, alla pagina \
                    /portal/emergency, se ha perso il telefono o teme che qualcuno le usi \
                    al posto suo.",
    emergency_replaces: "Questo codice di emergenza sostituisce ogni codice ricevuto in \
                         precedenza: quelli vecchi non valgono più.",
    nobody_asks: "Nessuno del servizio le chiederà mai il PUK o il codice di emergenza, né \
                  per telefono né per e-mail né in altro modo.",
    keep: "Conservi questa lettera in un luogo sicuro, lontano dal telefono, e non la \
           inoltri a nessuno.",
    months: [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ],
};

const EN: Words = Words {
    title: "Sealed envelope",
    subtitle: "The confidential codes of your remote signature",
    holder: "Holder",
    user_id: "User id",
    credential: "Credential",
    serial: "Certificate serial number",
    issued: "Issued on",
    puk: "PUK",
    puk_use: "The PUK activates your signing credential and unblocks your PIN when too \
              many wrong attempts have blocked it.",
    emergency: "Emergency code",
    emergency_use: "The emergency code suspends all your signing credentials at once \
                    without signing in, on the page /portal/emergency, if you lost your \
                    phone or fear that someone else is using them.",
    emergency_replaces: "This emergency code replaces any code you received before: the \
                         old ones no longer work.",
    nobody_asks: "Nobody from the service will ever ask you for the PUK or the emergency \
                  code, by phone, by e-mail or in any other way.",
    keep: "Keep this letter in a safe place, away from your phone, and do not forward it \
           to anyone.",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
};

fn words(locale: Locale) -> &'static Words {
    match locale {
        Locale::It => &IT,
        Locale::En => &EN,
    }
}

/// The document language for the catalog's /Lang.
pub fn language(locale: Locale) -> &'static str {
    match locale {
        Locale::It => "it-IT",
        Locale::En => "en",
    }
}

/// "2 dicembre 2026" / "2 December 2026".
fn long_date(words: &Words, date: Date) -> String {
    let month = usize::from(u8::from(date.month())) - 1;
    let name = words.months.get(month).copied().unwrap_or_default();
    format!("{} {} {}", date.day(), name, date.year())
}

/// The page's content stream (unencrypted).
pub fn content(letter: &Letter) -> Vec<u8> {
    let w = words(letter.locale);
    let mut page = Page::default();
    let mut y = PAGE_HEIGHT as f32 - MARGIN - 8.0;

    page.text("F2", 22.0, MARGIN, y, w.title, None);
    y -= 20.0;
    page.text("F1", 11.0, MARGIN, y, w.subtitle, None);
    y -= 10.0;
    page.rule(MARGIN, y, TEXT_WIDTH);
    y -= 26.0;

    let name = format!("{} {}", letter.given_name, letter.surname);
    let date = long_date(w, letter.issued_on);
    let fields: [(&str, &str, Option<&str>); 5] = [
        (w.holder, &name, None),
        (w.user_id, &letter.user_id, None),
        (w.credential, &letter.credential_id, None),
        (w.serial, &letter.serial_number, Some(TAG_SERIAL)),
        (w.issued, &date, None),
    ];
    for (label, value, tag) in fields {
        page.text("F1", 10.0, MARGIN, y, &format!("{label}:"), None);
        // Long values (a credential id, a long name) go on lines of their own below the label,
        // wrapped at spaces; a tagged value stays one string so that `open` reads it whole.
        let value_x = MARGIN + 170.0;
        if width(value, 10.0) > TEXT_WIDTH - 170.0 {
            let lines = match tag {
                Some(_) => vec![value.to_owned()],
                None => wrap(value, 10.0, TEXT_WIDTH - 12.0),
            };
            for line in lines {
                y -= 14.0;
                page.text("F2", 10.0, MARGIN + 12.0, y, &line, tag);
            }
        } else {
            page.text("F2", 10.0, value_x, y, value, tag);
        }
        y -= 17.0;
    }
    y -= 14.0;

    for (label, value, tag, uses) in [
        (w.puk, &letter.puk, TAG_PUK, vec![w.puk_use]),
        (
            w.emergency,
            &letter.emergency_code,
            TAG_EMERGENCY,
            vec![w.emergency_use, w.emergency_replaces],
        ),
    ] {
        // A framed box: the label, the value large in a monospace font (no 0/O, 1/l doubt).
        let size = if value.chars().count() > 22 {
            16.0
        } else {
            22.0
        };
        let top = y;
        y -= 22.0;
        page.text("F2", 12.0, MARGIN + 14.0, y, label, None);
        y -= 32.0;
        page.text("F3", size, MARGIN + 14.0, y, value, Some(tag));
        y -= 16.0;
        page.frame(MARGIN, y, TEXT_WIDTH, top - y);
        y -= 18.0;
        for paragraph in uses {
            for line in wrap(paragraph, 10.0, TEXT_WIDTH) {
                page.text("F1", 10.0, MARGIN, y, &line, None);
                y -= 14.0;
            }
            y -= 4.0;
        }
        y -= 18.0;
    }

    page.rule(MARGIN, y + 8.0, TEXT_WIDTH);
    y -= 10.0;
    for paragraph in [w.nobody_asks, w.keep] {
        for line in wrap(paragraph, 10.5, TEXT_WIDTH) {
            page.text("F2", 10.5, MARGIN, y, &line, None);
            y -= 15.0;
        }
        y -= 5.0;
    }
    page.out
}

#[derive(Default)]
struct Page {
    out: Vec<u8>,
}

impl Page {
    /// One line of text at (x, y), optionally inside a marked-content sequence `tag`.
    fn text(&mut self, font: &str, size: f32, x: f32, y: f32, text: &str, tag: Option<&str>) {
        if let Some(tag) = tag {
            self.out
                .extend_from_slice(format!("/{tag} BMC\n").as_bytes());
        }
        self.out
            .extend_from_slice(format!("BT /{font} {size:.1} Tf {x:.2} {y:.2} Td ").as_bytes());
        self.out.extend_from_slice(&literal(&win_ansi(text)));
        self.out.extend_from_slice(b" Tj ET\n");
        if tag.is_some() {
            self.out.extend_from_slice(b"EMC\n");
        }
    }

    /// A thin horizontal line.
    fn rule(&mut self, x: f32, y: f32, length: f32) {
        self.out.extend_from_slice(
            format!("0.6 w {x:.2} {y:.2} m {:.2} {y:.2} l S\n", x + length).as_bytes(),
        );
    }

    /// A rectangle outline with its lower-left corner at (x, y).
    fn frame(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.out
            .extend_from_slice(format!("1.2 w {x:.2} {y:.2} {w:.2} {h:.2} re S\n").as_bytes());
    }
}

/// `text` in WinAnsiEncoding (Windows-1252): ASCII and Latin-1 letters as they are (so à è é
/// ì ò ù keep their accents), the typographic marks of 0x80-0x9F, anything else as '?'.
pub fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{A0}'..='\u{FF}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// The inverse of [`win_ansi`] for the bytes it writes.
pub fn from_win_ansi(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80 => '€',
            0x85 => '…',
            0x91 => '‘',
            0x92 => '’',
            0x93 => '“',
            0x94 => '”',
            0x95 => '•',
            0x96 => '–',
            0x97 => '—',
            _ => char::from(b),
        })
        .collect()
}

/// A PDF literal string: parentheses and backslashes escaped, bytes outside printable ASCII
/// as octal escapes.
fn literal(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'(');
    for &b in bytes {
        match b {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b' '..=b'~' => out.push(b),
            _ => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
        }
    }
    out.push(b')');
    out
}

/// An estimate of the width of `text` in Helvetica at `size` points: character classes
/// rather than the font's metrics, erring wide so that a line never runs off the page.
fn width(text: &str, size: f32) -> f32 {
    let em: f32 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | 'I' | '.' | ',' | ';' | ':' | '\'' | '!' | '|' => 0.28,
            ' ' | 'f' | 't' | 'r' | '(' | ')' | '/' | '-' | 'ì' | 'í' => 0.34,
            'm' | 'w' | 'M' | 'W' => 0.89,
            'A'..='Z' => 0.72,
            _ => 0.56,
        })
        .sum();
    em * size
}

/// `text` broken into lines no wider than `max` at `size` points, at spaces.
fn wrap(text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if width(&candidate, size) > max && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line = word.to_owned();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_letters_are_encoded_in_win_ansi_and_back() {
        let text = "perché è già così: più Ù € “ok” – sì";
        let bytes = win_ansi(text);
        assert_eq!(bytes.len(), text.chars().count());
        assert_eq!(win_ansi("è"), vec![0xE8]);
        assert_eq!(win_ansi("à"), vec![0xE0]);
        assert_eq!(from_win_ansi(&bytes), text);
        assert_eq!(win_ansi("Ω"), b"?");
    }

    #[test]
    fn literals_escape_what_would_end_the_string() {
        assert_eq!(literal(b"a(b)c\\"), b"(a\\(b\\)c\\\\)".to_vec());
        assert_eq!(literal(&[0xE8, b'\n']), b"(\\350\\012)".to_vec());
    }

    #[test]
    fn wrapped_lines_fit_the_page() {
        for locale in [Locale::It, Locale::En] {
            let w = words(locale);
            for text in [w.emergency_use, w.nobody_asks, w.keep, w.puk_use] {
                let lines = wrap(text, 10.5, TEXT_WIDTH);
                assert_eq!(
                    lines.join(" "),
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                );
                for line in lines {
                    assert!(width(&line, 10.5) <= TEXT_WIDTH, "{line}");
                }
            }
        }
    }

    #[test]
    fn a_long_name_is_wrapped_and_the_page_keeps_its_margin() {
        let letter = Letter {
            locale: Locale::It,
            given_name: "Maria Giovanna Benedetta Ludovica Anna".repeat(2),
            surname: "della Rovere di Montefeltro Sforza Visconti".repeat(2),
            user_id: "m".into(),
            credential_id: "6f1c2a9e-1b7d-4c55-9d0e-2f6b8a7c1d33".into(),
            serial_number: "4F2A9C01D7E3B5681A2C".into(),
            puk: "12345678".into(),
            emergency_code: "ABCD-EFGH-IJKL-MNOP".into(),
            issued_on: time::macros::date!(2026 - 12 - 02),
        };
        let content = String::from_utf8_lossy(&content(&letter)).into_owned();
        let mut lowest = f32::MAX;
        for line in content.lines().filter(|l| l.contains(" Td ")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "Td").unwrap();
            let (x, y): (f32, f32) = (
                words[at - 2].parse().unwrap(),
                words[at - 1].parse().unwrap(),
            );
            let size: f32 = words[2].parse().unwrap();
            let raw = &line[line.find('(').unwrap() + 1..line.rfind(')').unwrap()];
            // An octal escape (an accented letter) is one character of the line.
            let mut text = String::new();
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    chars.by_ref().take(3).for_each(drop);
                    text.push('e');
                } else {
                    text.push(c);
                }
            }
            let text = text.as_str();
            if words[1] != "/F3" {
                assert!(
                    x + width(text, size) <= PAGE_WIDTH as f32 - MARGIN + 0.5,
                    "{line}"
                );
            }
            lowest = lowest.min(y);
        }
        assert!(lowest >= MARGIN, "the letter ends at y = {lowest}");
    }

    #[test]
    fn dates_are_written_out_in_the_subscribers_language() {
        let date = time::macros::date!(2026 - 12 - 02);
        assert_eq!(long_date(&IT, date), "2 dicembre 2026");
        assert_eq!(long_date(&EN, date), "2 December 2026");
    }
}

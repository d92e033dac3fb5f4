//! The reader of sigillo's own envelopes (tests, the bench): not a general PDF parser, but
//! one that follows the file's structure (startxref → xref table → trailer → /Encrypt and
//! /Root → page → content stream) rather than searching for byte patterns, and refuses
//! anything it does not understand instead of guessing.

use zeroize::Zeroizing;

use super::crypt::{check_perms, decrypt_object, password_bytes, unlock};
use super::letter::{from_win_ansi, TAG_EMERGENCY, TAG_PUK, TAG_SERIAL};
use super::{EnvelopeError, Opened};

type Result<T> = std::result::Result<T, EnvelopeError>;

/// Nesting deeper than this is refused (our files nest three levels).
const MAX_DEPTH: usize = 16;
/// More objects than this are refused (our files have nine).
const MAX_OBJECTS: usize = 1024;

/// A PDF object, as far as this reader needs them.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Int(i64),
    Real,
    Bool(bool),
    Null,
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    Ref(u32),
    /// A bare keyword: `obj`, `stream`, or a content-stream operator.
    Keyword(Vec<u8>),
}

impl Obj {
    fn get(&self, key: &str) -> Option<&Obj> {
        match self {
            Obj::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn string(&self, key: &str) -> Result<&[u8]> {
        match self.get(key) {
            Some(Obj::Str(s)) => Ok(s),
            _ => Err(EnvelopeError::Malformed("string entry missing")),
        }
    }

    fn int(&self, key: &str) -> Result<i64> {
        match self.get(key) {
            Some(Obj::Int(i)) => Ok(*i),
            _ => Err(EnvelopeError::Malformed("integer entry missing")),
        }
    }

    fn is_name(&self, key: &str, name: &str) -> bool {
        matches!(self.get(key), Some(Obj::Name(n)) if n == name.as_bytes())
    }

    fn reference(&self, key: &str) -> Result<u32> {
        match self.get(key) {
            Some(Obj::Ref(n)) => Ok(*n),
            _ => Err(EnvelopeError::Malformed("reference entry missing")),
        }
    }
}

/// A cursor over PDF syntax.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c' | b'\0')
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

impl<'a> Lexer<'a> {
    fn at(data: &'a [u8], pos: usize) -> Lexer<'a> {
        Lexer { data, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.data.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Result<u8> {
        let b = self
            .peek()
            .ok_or(EnvelopeError::Malformed("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    /// Skips white space and comments.
    fn skip(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn regular(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_white(b) || is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        self.data.get(start..self.pos).unwrap_or_default()
    }

    /// The next object; `Ok(None)` at the end of the data. Integers followed by `G R` become
    /// references.
    fn object(&mut self, depth: usize) -> Result<Option<Obj>> {
        if depth > MAX_DEPTH {
            return Err(EnvelopeError::Malformed("nested too deep"));
        }
        self.skip();
        let Some(b) = self.peek() else {
            return Ok(None);
        };
        let obj = match b {
            b'/' => {
                self.pos += 1;
                Obj::Name(self.regular().to_vec())
            }
            b'(' => Obj::Str(self.literal()?),
            b'<' if self.peek_at(1) == Some(b'<') => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip();
                    if self.peek() == Some(b'>') && self.peek_at(1) == Some(b'>') {
                        self.pos += 2;
                        break;
                    }
                    let Some(Obj::Name(key)) = self.object(depth + 1)? else {
                        return Err(EnvelopeError::Malformed("dictionary key"));
                    };
                    let value = self
                        .object(depth + 1)?
                        .ok_or(EnvelopeError::Malformed("dictionary value"))?;
                    entries.push((key, value));
                }
                Obj::Dict(entries)
            }
            b'<' => Obj::Str(self.hex()?),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        break;
                    }
                    items.push(
                        self.object(depth + 1)?
                            .ok_or(EnvelopeError::Malformed("unterminated array"))?,
                    );
                }
                Obj::Array(items)
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => {
                let token = self.regular();
                if token.contains(&b'.') {
                    Obj::Real
                } else {
                    let n = std::str::from_utf8(token)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                        .ok_or(EnvelopeError::Malformed("number"))?;
                    self.maybe_reference(n)
                }
            }
            _ if is_delimiter(b) => return Err(EnvelopeError::Malformed("unexpected delimiter")),
            _ => match self.regular() {
                b"true" => Obj::Bool(true),
                b"false" => Obj::Bool(false),
                b"null" => Obj::Null,
                word => Obj::Keyword(word.to_vec()),
            },
        };
        Ok(Some(obj))
    }

    /// `n` alone, or the reference `n G R` if that is what follows.
    fn maybe_reference(&mut self, n: i64) -> Obj {
        let save = self.pos;
        self.skip();
        let generation = self.regular();
        if !generation.is_empty() && generation.iter().all(u8::is_ascii_digit) {
            self.skip();
            if self.regular() == b"R" {
                if let Ok(number) = u32::try_from(n) {
                    return Obj::Ref(number);
                }
            }
        }
        self.pos = save;
        Obj::Int(n)
    }

    fn literal(&mut self) -> Result<Vec<u8>> {
        self.pos += 1; // (
        let mut out = Vec::new();
        let mut open = 1usize;
        loop {
            match self.bump()? {
                b'\\' => match self.bump()? {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'\r' => {
                        if self.peek() == Some(b'\n') {
                            self.pos += 1;
                        }
                    }
                    b'\n' => {}
                    d @ b'0'..=b'7' => {
                        let mut value = u32::from(d - b'0');
                        for _ in 0..2 {
                            match self.peek() {
                                Some(c @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(c - b'0');
                                    self.pos += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((value & 0xFF) as u8);
                    }
                    other => out.push(other),
                },
                b'(' => {
                    open += 1;
                    out.push(b'(');
                }
                b')' => {
                    open -= 1;
                    if open == 0 {
                        return Ok(out);
                    }
                    out.push(b')');
                }
                other => out.push(other),
            }
        }
    }

    fn hex(&mut self) -> Result<Vec<u8>> {
        self.pos += 1; // <
        let mut digits = Vec::new();
        loop {
            match self.bump()? {
                b'>' => break,
                b if is_white(b) => {}
                b if b.is_ascii_hexdigit() => digits.push(b),
                _ => return Err(EnvelopeError::Malformed("hex string")),
            }
        }
        if digits.len() % 2 == 1 {
            digits.push(b'0');
        }
        hex::decode(&digits).map_err(|_| EnvelopeError::Malformed("hex string"))
    }
}

/// The file's cross-reference table: object number → byte offset.
struct File<'a> {
    data: &'a [u8],
    offsets: Vec<Option<usize>>,
    trailer: Obj,
}

impl<'a> File<'a> {
    fn parse(data: &'a [u8]) -> Result<File<'a>> {
        if !data.starts_with(b"%PDF-") {
            return Err(EnvelopeError::Malformed("no PDF header"));
        }
        let tail_from = data.len().saturating_sub(64);
        let tail = data.get(tail_from..).unwrap_or_default();
        let at = find_last(tail, b"startxref").ok_or(EnvelopeError::Malformed("no startxref"))?;
        let mut lexer = Lexer::at(data, tail_from + at + b"startxref".len());
        let Some(Obj::Int(xref)) = lexer.object(0)? else {
            return Err(EnvelopeError::Malformed("startxref offset"));
        };
        let xref = usize::try_from(xref).map_err(|_| EnvelopeError::Malformed("xref offset"))?;
        let mut lexer = Lexer::at(data, xref);
        if lexer.object(0)? != Some(Obj::Keyword(b"xref".to_vec())) {
            return Err(EnvelopeError::Malformed("no xref table at startxref"));
        }
        let mut offsets = Vec::new();
        loop {
            match lexer.object(0)? {
                Some(Obj::Keyword(k)) if k == b"trailer" => break,
                Some(Obj::Int(first)) => {
                    let Some(Obj::Int(count)) = lexer.object(0)? else {
                        return Err(EnvelopeError::Malformed("xref subsection"));
                    };
                    let first = usize::try_from(first)
                        .map_err(|_| EnvelopeError::Malformed("xref subsection"))?;
                    // Ours have nine objects; a table naming more than MAX_OBJECTS is not ours
                    // (and must not make us allocate for it).
                    if !(0..=MAX_OBJECTS as i64).contains(&count)
                        || first.saturating_add(count as usize) > MAX_OBJECTS
                    {
                        return Err(EnvelopeError::Malformed("xref subsection"));
                    }
                    for i in 0..count as usize {
                        let (Some(Obj::Int(offset)), Some(Obj::Int(_)), Some(Obj::Keyword(kind))) =
                            (lexer.object(0)?, lexer.object(0)?, lexer.object(0)?)
                        else {
                            return Err(EnvelopeError::Malformed("xref entry"));
                        };
                        let number = first + i;
                        if offsets.len() <= number {
                            offsets.resize(number + 1, None);
                        }
                        if kind == b"n" {
                            let offset = usize::try_from(offset)
                                .map_err(|_| EnvelopeError::Malformed("xref entry"))?;
                            if let Some(slot) = offsets.get_mut(number) {
                                *slot = Some(offset);
                            }
                        }
                    }
                }
                _ => return Err(EnvelopeError::Malformed("xref table")),
            }
        }
        let trailer = lexer
            .object(0)?
            .ok_or(EnvelopeError::Malformed("no trailer"))?;
        Ok(File {
            data,
            offsets,
            trailer,
        })
    }

    /// Object `number`'s value, and where its body ends (for a stream's data).
    fn object(&self, number: u32) -> Result<(Obj, usize)> {
        let offset = self
            .offsets
            .get(number as usize)
            .copied()
            .flatten()
            .ok_or(EnvelopeError::Malformed("object not in xref"))?;
        let mut lexer = Lexer::at(self.data, offset);
        let head = (lexer.object(0)?, lexer.object(0)?, lexer.object(0)?);
        match head {
            (Some(Obj::Int(n)), Some(Obj::Int(_)), Some(Obj::Keyword(k)))
                if k == b"obj" && n == i64::from(number) => {}
            _ => return Err(EnvelopeError::Malformed("object header")),
        }
        let value = lexer
            .object(0)?
            .ok_or(EnvelopeError::Malformed("object body"))?;
        Ok((value, lexer.pos))
    }

    /// Stream object `number`: its dictionary and raw (still encrypted) data.
    fn stream(&self, number: u32) -> Result<(Obj, &'a [u8])> {
        let (dict, end) = self.object(number)?;
        let mut lexer = Lexer::at(self.data, end);
        if lexer.object(0)? != Some(Obj::Keyword(b"stream".to_vec())) {
            return Err(EnvelopeError::Malformed("not a stream"));
        }
        // The keyword is followed by CRLF or LF, then the data.
        if lexer.peek() == Some(b'\r') {
            lexer.pos += 1;
        }
        if lexer.bump()? != b'\n' {
            return Err(EnvelopeError::Malformed("stream keyword"));
        }
        let length = usize::try_from(dict.int("Length")?)
            .map_err(|_| EnvelopeError::Malformed("stream length"))?;
        let data = self
            .data
            .get(lexer.pos..lexer.pos.saturating_add(length))
            .ok_or(EnvelopeError::Malformed("stream length"))?;
        Ok((dict, data))
    }
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Opens an envelope: passphrase checked against U, key from UE, content stream decrypted,
/// the three tagged values read.
pub fn open(pdf: &[u8], passphrase: &str) -> Result<Opened> {
    let file = File::parse(pdf)?;
    let (encrypt, _) = file.object(file.trailer.reference("Encrypt")?)?;
    if !encrypt.is_name("Filter", "Standard")
        || encrypt.int("V")? != 5
        || encrypt.int("R")? != 6
        || !encrypt.is_name("StmF", "StdCF")
    {
        return Err(EnvelopeError::Malformed("not AES-256 revision 6"));
    }
    let key = unlock(
        password_bytes(passphrase),
        encrypt.string("U")?,
        encrypt.string("UE")?,
    )?;
    let p = i32::try_from(encrypt.int("P")?).map_err(|_| EnvelopeError::Malformed("P"))?;
    check_perms(&key, encrypt.string("Perms")?, p)?;

    let (catalog, _) = file.object(file.trailer.reference("Root")?)?;
    let (pages, _) = file.object(catalog.reference("Pages")?)?;
    let page = match pages.get("Kids") {
        Some(Obj::Array(kids)) => match kids.first() {
            Some(Obj::Ref(n)) => *n,
            _ => return Err(EnvelopeError::Malformed("no page")),
        },
        _ => return Err(EnvelopeError::Malformed("no page")),
    };
    let (page, _) = file.object(page)?;
    let (_, data) = file.stream(page.reference("Contents")?)?;
    let content = decrypt_object(&key, data)?;
    values(&content)
}

/// The tagged values of the content stream: the string shown inside `/Tag BMC … EMC`.
fn values(content: &Zeroizing<Vec<u8>>) -> Result<Opened> {
    let mut lexer = Lexer::at(content, 0);
    let (mut puk, mut emergency_code, mut serial_number) = (None, None, None);
    let mut tag: Option<Vec<u8>> = None;
    let mut last_name: Option<Vec<u8>> = None;
    let mut last_string: Option<Vec<u8>> = None;
    while let Some(obj) = lexer.object(0)? {
        match obj {
            Obj::Name(n) => last_name = Some(n),
            Obj::Str(s) => last_string = Some(s),
            Obj::Keyword(op) => {
                match op.as_slice() {
                    b"BMC" => tag = last_name.take(),
                    b"EMC" => tag = None,
                    b"Tj" => {
                        if let (Some(t), Some(s)) = (tag.as_deref(), last_string.take()) {
                            let value = Some(from_win_ansi(&s));
                            if t == TAG_PUK.as_bytes() {
                                puk = value;
                            } else if t == TAG_EMERGENCY.as_bytes() {
                                emergency_code = value;
                            } else if t == TAG_SERIAL.as_bytes() {
                                serial_number = value;
                            }
                        }
                    }
                    _ => {}
                }
                // Operands belong to the operator just read.
                last_name = None;
                last_string = None;
            }
            _ => {}
        }
    }
    match (puk, emergency_code, serial_number) {
        (Some(puk), Some(emergency_code), Some(serial_number)) => Ok(Opened {
            puk,
            emergency_code,
            serial_number,
        }),
        _ => Err(EnvelopeError::Malformed(
            "a value is missing from the letter",
        )),
    }
}

//! The PDF writer: one page, nine objects, a classic cross-reference table, every string and
//! stream encrypted (the encryption dictionary and the trailer's /ID excepted, as the
//! standard requires).
//!
//! Objects: 1 catalog, 2 page tree, 3 page, 4-6 fonts, 7 content stream, 8 encryption
//! dictionary. No document information dictionary (PDF 2.0 deprecates it).

use rand::RngCore;

use super::crypt::{encrypt_object, PERMISSIONS};
use super::letter::{self, FONTS, PAGE_HEIGHT, PAGE_WIDTH};
use super::{EnvelopeError, Letter, Lock};

/// The envelope PDF of `letter` under `lock`.
pub fn write(lock: &Lock, letter: &Letter) -> Result<Vec<u8>, EnvelopeError> {
    let key = lock.file_key();
    let public = lock.public();
    let content = encrypt_object(key, &letter::content(letter))?;
    let lang = encrypt_object(key, letter::language(letter.locale).as_bytes())?;

    let mut objects: Vec<Vec<u8>> = vec![
        format!(
            "<< /Type /Catalog /Pages 2 0 R /Lang <{}> >>",
            hex::encode(lang)
        )
        .into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << {} >> >> /Contents 7 0 R >>",
            FONTS
                .iter()
                .enumerate()
                .map(|(i, (name, _))| format!("/{name} {} 0 R", i + 4))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into_bytes(),
    ];
    for (_, base) in FONTS {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding /WinAnsiEncoding >>"
            )
            .into_bytes(),
        );
    }
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"\nendstream");
    objects.push(stream);
    // The crypt filter's /Length is in bytes (32), the dictionary's in bits (256), as writers
    // and readers of AESV3 do it.
    objects.push(
        format!(
            "<< /Filter /Standard /V 5 /R 6 /Length 256 \
             /CF << /StdCF << /Type /CryptFilter /CFM /AESV3 /AuthEvent /DocOpen /Length 32 >> >> \
             /StmF /StdCF /StrF /StdCF /P {PERMISSIONS} /EncryptMetadata true \
             /U <{}> /UE <{}> /O <{}> /OE <{}> /Perms <{}> >>",
            hex::encode(&public.u),
            hex::encode(&public.ue),
            hex::encode(&public.o),
            hex::encode(&public.oe),
            hex::encode(&public.perms),
        )
        .into_bytes(),
    );
    let encrypt_number = objects.len();

    // Header, with the binary comment that tells transfer tools the file is binary.
    let mut out = b"%PDF-2.0\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
    // Each entry is exactly 20 bytes, its end of line being space + LF.
    out.extend_from_slice(b"0000000000 65535 f \n");
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let id = hex::encode(id);
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Encrypt {encrypt_number} 0 R /ID [<{id}> <{id}>] >>\n\
             startxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    Ok(out)
}

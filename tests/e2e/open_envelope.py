"""Opens a sealed envelope as its subscriber would: pypdf, the passphrase, the text.

    python open_envelope.py PASSPHRASE < envelope.pdf   → the letter's text on stdout
Exit 3 when the passphrase does not open it.
"""
import io
import sys

from pypdf import PdfReader


def main() -> int:
    reader = PdfReader(io.BytesIO(sys.stdin.buffer.read()))
    if not reader.is_encrypted:
        print("the envelope is not encrypted", file=sys.stderr)
        return 4
    if not reader.decrypt(sys.argv[1]):
        print("the passphrase does not open the envelope", file=sys.stderr)
        return 3
    print("\n".join(page.extract_text() or "" for page in reader.pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Text to ISO-2022-JP as Windows writes it (CP50220): JIS X 0208 plus the NEC and IBM characters."""
from __future__ import annotations

import base64
import unicodedata
from functools import cache

ESC_ASCII = b"\x1b(B"
ESC_JIS = b"\x1b$B"
# RFC 2047 section 2: an encoded word is at most 75 characters; 12 characters of text stay
# under that even when each needs its own escape sequences.
WORD_CHARS = 12


@cache
def _jis_of() -> dict[str, bytes]:
    """Character -> JIS X 0208 row/cell, the lowest CP932 code winning: NEC row 13 before
    NEC-selected IBM rows 89-92, which Microsoft's CP50220 uses for the IBM extensions too."""
    table: dict[str, bytes] = {}
    for lead in [*range(0x81, 0xA0), *range(0xE0, 0xEF)]:
        for trail in [*range(0x40, 0x7F), *range(0x80, 0xFD)]:
            try:
                char = bytes((lead, trail)).decode("cp932")
            except UnicodeDecodeError:
                continue
            table.setdefault(char, _sjis_to_jis(lead, trail))
    return table


def _sjis_to_jis(lead: int, trail: int) -> bytes:
    row = (lead - (0x70 if lead < 0xA0 else 0xB0)) * 2 - (1 if trail < 0x9F else 0)
    cell = trail - (0x1F if trail < 0x7F else 0x20 if trail < 0x9F else 0x7E)
    return bytes((row, cell))


def _fullwidth(text: str) -> str:
    """CP50220 sends half-width katakana as their full-width forms (JIS X 0201 kana is not in ISO-2022-JP)."""
    return "".join(unicodedata.normalize("NFKC", c) if "\uff61" <= c <= "\uff9f" else c for c in text)


def encode(text: str) -> bytes:
    """ISO-2022-JP bytes that end in ASCII mode (RFC 1468); UnicodeEncodeError for anything else."""
    table, out, jis = _jis_of(), bytearray(), False
    for position, char in enumerate(_fullwidth(text)):
        if char < "\x80":
            if jis:
                out += ESC_ASCII
                jis = False
            out += char.encode("ascii")
            continue
        pair = table.get(char)
        if pair is None:
            raise UnicodeEncodeError("iso-2022-jp", text, position, position + 1, "not in CP50220")
        if not jis:
            out += ESC_JIS
            jis = True
        out += pair
    if jis:
        out += ESC_ASCII
    return bytes(out)


def can_encode(text: str) -> bool:
    try:
        encode(text)
    except UnicodeEncodeError:
        return False
    return True


def encoded_words(text: str) -> str:
    """An RFC 2047 header value: B-encoded words of ISO-2022-JP, each starting and ending in ASCII mode."""
    text = _fullwidth(text)
    chunks = [text[i:i + WORD_CHARS] for i in range(0, len(text), WORD_CHARS)] or [""]
    return " ".join(f"=?ISO-2022-JP?B?{base64.b64encode(encode(chunk)).decode('ascii')}?=" for chunk in chunks)

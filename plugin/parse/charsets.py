"""Bytes in a declared, missing or wrong charset -> text, with Japanese encodings done right."""
from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import charset_normalizer

from plugin.parse import budget

# Codec names of our own decoders, for the Microsoft supersets Python lacks.
ISO2022JP = "x-iso-2022-jp-ms"  # CP50220/50221: JIS X 0208 plus NEC row 13 and IBM rows 89-92
EUCJP = "x-euc-jp-ms"  # CP51932 / eucJP-ms, then EUC-JIS-2004

# Labels that name a subset of what senders really use (WHATWG Encoding Standard, section 4.2,
# and the Microsoft code pages Outlook writes under the standard names).
_SUPERSETS = {
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                     "windows-31j", "cp932", "ms932", "x-ms-cp932", "sjis-open", "sjis-win"), "cp932"),
    **dict.fromkeys(("euc-jp", "x-euc-jp", "eucjp", "euc_jp", "ujis", "cseucpkdfmtjapanese",
                     "eucjp-ms", "eucjp-open", "cp51932", "euc-jp-ms", "eucjp-win"), EUCJP),
    **dict.fromkeys(("iso-2022-jp", "csiso2022jp", "iso-2022-jp-ms", "iso-2022-jp-1",
                     "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004", "iso2022jp", "jis",
                     "cp50220", "cp50221", "cp50222", "iso-2022-jp-ext", "x-iso2022jp-cp932"), ISO2022JP),
    **dict.fromkeys(("gb2312", "gbk", "cp936", "x-gbk", "euc-cn", "x-euc-cn", "csgb2312",
                     "gb_2312-80", "chinese", "gb18030", "windows-936"), "gb18030"),
    **dict.fromkeys(("ks_c_5601-1987", "ks_c_5601", "ks_c_5601-1989", "euc-kr", "csksc56011987",
                     "ksc5601", "korean", "windows-949", "x-windows-949", "uhc", "cp949"), "cp949"),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "x-x-big5", "csbig5"), "big5hkscs"),
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819",
                     "windows-1252", "cp1252", "x-cp1252"), "cp1252"),
    **dict.fromkeys(("iso-8859-9", "latin5", "windows-1254"), "cp1254"),
    **dict.fromkeys(("iso-8859-11", "tis-620", "windows-874"), "cp874"),
    **dict.fromkeys(("utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"), "utf-8"),
    **dict.fromkeys(("utf-7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode20utf7"), "utf-7"),
    **dict.fromkeys(("us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "csascii"), "ascii"),
}
# Labels that carry no information about the bytes.
_NO_CHARSET = frozenset(("", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "none",
                         "x-user-defined", "8bit", "binary"))
_NOT_ASCII_BASED = frozenset(("utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                              "utf-32-be"))
_JAPANESE = frozenset(("cp932", EUCJP, ISO2022JP, "shift_jis_2004", "euc_jis_2004"))
# Tried in this order when nothing (usable) is declared; most of our customers write Japanese.
_CJK_CANDIDATES = ("cp932", EUCJP, "gb18030", "cp949", "big5hkscs")
_MAX_SUSPICION = 0.25
# Single-byte tables of Latin script, in which a run of accented letters is rare.
_LATIN_CODECS = frozenset(("cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1254", "iso8859_9",
                           "cp850", "mac_roman", "iso8859_3", "iso8859_4", "iso8859_13", "cp1257"))
_NON_ASCII_RUN = re.compile("[^\x00-\x7f]{3,}")
_CP1252_RARE = "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
_EUC_SHAPED = re.compile(rb"(?:[\x00-\x7f]|[\xa1-\xfe]{2})*")
_SAMPLE_CHARS = 200_000

_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\$\([@-Z]|\([BJIH]|\$[AGH]|\.[AF])")
_ISO2022_SPLIT = re.compile(rb"(\x1b(?:\$\(?[@-Z]|\([@-Z]|\.[@-Z]|N)|[\x0e\x0f])")
_JIS_PAIR = re.compile(rb"[\x21-\x7e]{2}")
_EUC_CHAR = re.compile(rb"[\xa1-\xfe]{2}|\x8e[\xa1-\xdf]|\x8f[\xa1-\xfe]{2}")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_KANA = re.compile("[\u3041-\u30ff]")
_IDEOGRAPH = re.compile("[\u3400-\u9fff]")
_WIDE = re.compile("[\u3400-\u9fff\uac00-\ud7a3]")
_BASE_TABLE = {"gb18030": "gb2312", "cp949": "euc_kr"}
# Signs of a wrong decoding: replacement and control characters, private use, half-width kana,
# Hangul jamo, UTF-8 read as Latin-1 ("Ã¼"), and ideographs glued between Latin letters.
_SUSPECT = re.compile(
    "[\ufffd\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\uff61-\uff9f\u3130-\u318f]"
    "|[\u00c2-\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
    "|(?<=[A-Za-z])[\u3400-\u9fff\uac00-\ud7a3](?=[A-Za-z])")
# Spellings of real labels that codecs.lookup does not know: "cp-850", "win-1251",
# "x-mac-roman", "iso-8859-8-i" (RFC 1556: the -i/-e suffix is the bidi mode, not the charset).
_LABEL_SPELLINGS = (
    (re.compile(r"^x-(?!mac)"), ""),
    (re.compile(r"^(?:cp|ibm|ms|win|windows)[-_ ]?(\d{3,4})$"), r"cp\1"),
    (re.compile(r"^(iso[-_ ]?8859[-_ ]?\d+)[-_][ie]$"), r"\1"),
    (re.compile(r"^(?:x-)?mac-?(\w+)$"), r"mac_\1"),
    (re.compile(r"^latin-(\d+)$"), r"latin\1"),
    (re.compile(r"^koi8(\w)$"), r"koi8_\1"),
)
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    repaired: bool  # the declared charset was missing or wrong for these non-ASCII bytes


def codec_for(label: str | None) -> str | None:
    """The codec to decode a declared charset label with, or None when it names nothing usable."""
    name = (label or "").strip().strip("\"'").lower()
    name = name.split("*", 1)[0]  # RFC 2231 section 5: charset*language
    if name in _NO_CHARSET:
        return None
    for spelling in _spellings(name):
        if spelling in _SUPERSETS:
            return _SUPERSETS[spelling]
        try:
            return codecs.lookup(spelling).name
        except (LookupError, ValueError):  # ValueError: a NUL inside the label
            continue
    return None


def _spellings(name: str) -> Iterator[str]:
    """The label as written, then rewritten step by step into the names Python knows."""
    yield name
    for pattern, replacement in _LABEL_SPELLINGS:
        name = pattern.sub(replacement, name)
        yield name


def decode_text(data: bytes, declared: str | None) -> Decoded:
    """Decode text bytes; when the declaration is missing or wrong, find the charset that fits."""
    codec = codec_for(declared)
    if codec in _NOT_ASCII_BASED:
        text = _try_decode(data, codec)
        if text is not None:
            return Decoded(text, False)
    if data.isascii():
        if _JIS_ESCAPE.search(data):
            text = _try_decode(data, ISO2022JP)
            if text is not None:
                return Decoded(text, codec != ISO2022JP)
        return Decoded(data.decode("ascii"), False)
    if codec is not None:
        text = _try_decode(data, codec)
        if text is not None and not _utf8_fits_better(data, text, codec):
            return Decoded(text, False)
    return Decoded(guess_text(data), True)


def decode_header_bytes(data: bytes, body_charset: str | None) -> Decoded:
    """Raw 8-bit header text as a person would read it: UTF-8 (RFC 6532), else the body's charset
    when it reads plausibly, else the East Asian table that fits, else Windows-1252 for Latin text."""
    utf8 = _try_decode(data, "utf-8")
    if utf8 is not None:
        return Decoded(utf8, False)
    codec = codec_for(body_charset)
    if codec is not None and codec != "utf-8":
        text = _try_decode(data, codec)
        if text is not None and (reads_as_latin(text, codec) if codec in _LATIN_CODECS
                                 else suspicion(text, codec) <= _MAX_SUSPICION):
            return Decoded(text, True)
    latin = _decode_single_byte(data)
    if reads_as_latin(latin, "cp1252"):
        return Decoded(latin, True)
    if _EUC_SHAPED.fullmatch(data):
        # Both bytes of every character in 0xA1-0xFE: EUC-JP with kana, else GB2312/GBK, else EUC-KR.
        for codec in (EUCJP, "gb18030", "cp949"):
            text = _try_decode(data, codec)
            if text is not None and (codec != EUCJP or _KANA.search(text)) \
                    and suspicion(text, codec) <= _MAX_SUSPICION:
                return Decoded(text, True)
    return Decoded(guess_text(data), True)


def reads_as_latin(text: str, codec: str) -> bool:
    """Whether text from a Latin single-byte table reads as words: few symbols among its
    non-ASCII characters and no long runs of them, which East Asian bytes read so give.
    Windows-1252's letters in 0x80-0x9F (Š, Ž, Œ, ƒ) count as symbols: Shift_JIS lead bytes."""
    high = _NON_ASCII.findall(text)
    if len(high) < 2:
        return True
    rare = _CP1252_RARE if codec == "cp1252" else ""
    symbols = sum(not char.isalpha() or char in rare for char in high)
    in_runs = sum(len(run) for run in _NON_ASCII_RUN.findall(text))
    return symbols * 5 <= len(high) and in_runs * 10 <= len(high) * 3


def decode_body_with_hint(data: bytes, hint: str | None) -> Decoded:
    """An undeclared text body: a Latin charset the header's encoded-words name is the sender's
    own when the bytes read as Latin words, rather than a CJK table that fits a few 8-bit bytes."""
    codec = codec_for(hint)
    if codec in _LATIN_CODECS and not data.isascii() and _try_decode(data, "utf-8") is None:
        text = _try_decode(data, codec)
        if text is not None and reads_as_latin(text, codec):
            return Decoded(text, True)
    return decode_text(data, None)


def guess_text(data: bytes) -> str:
    """Decode bytes whose charset is unknown: UTF-8, then the East Asian encodings, then detection."""
    text = _try_decode(data, "utf-8")
    if text is not None:
        return text
    if _JIS_ESCAPE.search(data):
        text = _try_decode(data, ISO2022JP)
        if text is not None:
            return text
    scored = []
    for rank, codec in enumerate(_CJK_CANDIDATES):
        candidate = _try_decode(data, codec)
        if candidate is not None:
            scored.append((suspicion(candidate, codec), rank, candidate))
    if scored and min(scored)[0] <= _MAX_SUSPICION:
        return min(scored)[2]
    detected = _detect(data)
    if detected is not None:
        return detected
    return min(scored)[2] if scored else _decode_single_byte(data)


def suspicion(text: str, codec: str) -> float:
    """Share of non-ASCII characters that look like a wrong decoding (0 = plausible)."""
    sample = text[:_SAMPLE_CHARS]
    non_ascii = len(_NON_ASCII.findall(sample))
    bad = len(_SUSPECT.findall(sample))
    kana = len(_KANA.findall(sample))
    if codec in _JAPANESE:
        ideographs = len(_IDEOGRAPH.findall(sample))
        # Japanese prose without a single kana is Chinese read with a Japanese table.
        if ideographs >= 20 and not kana:
            bad += ideographs // 2
    elif codec != "utf-8":
        # Kana read through a Chinese or Korean table means Japanese bytes (EUC-JP shares rows 4-5).
        bad += kana
    if codec in _BASE_TABLE:
        # GBK and UHC extend GB2312 and KS X 1001 with rare characters; many of them in a short
        # text mean Big5 (or other) bytes read through the wrong table.
        bad += sum(not _in_table(char, _BASE_TABLE[codec]) for char in _WIDE.findall(sample[:2000]))
    return bad / max(non_ascii, 1)


def _in_table(char: str, codec: str) -> bool:
    """One two-byte code of the base table (Python's euc_kr spells other syllables as 8-byte make-up sequences)."""
    try:
        return len(char.encode(codec)) == 2
    except UnicodeEncodeError:
        return False


def charset_from_html(data: bytes) -> str | None:
    """The charset an HTML document declares in its own <meta> tag (HTML5 section 4.2.5.5)."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def decode_words(value: str) -> Decoded:
    """Decode RFC 2047 encoded-words in an unfolded header value."""
    pieces: list[str] = []
    repaired = False
    pending: list[tuple[str, bytes]] = []  # adjacent encoded-words not yet decoded
    position = 0
    for match in ENCODED_WORD.finditer(value):
        budget.check()
        gap = value[position:match.start()]
        # RFC 2047 section 6.2: whitespace between adjacent encoded-words is not displayed.
        if gap and not (pending and gap.isspace()):
            repaired |= _flush_words(pending, pieces)
            pieces.append(gap)
        charset, encoding, encoded = match.groups()
        pending.append((charset.lower(), _word_bytes(encoding, encoded)))
        position = match.end()
    repaired |= _flush_words(pending, pieces)
    pieces.append(value[position:])
    return Decoded("".join(pieces), repaired)


def _flush_words(pending: list[tuple[str, bytes]], pieces: list[str]) -> bool:
    """Decode runs of same-charset words together: mailers split multi-byte characters across words."""
    repaired = False
    while pending:
        charset = pending[0][0]
        run = 0
        while run < len(pending) and pending[run][0] == charset:
            run += 1
        decoded = decode_text(b"".join(data for _, data in pending[:run]), charset)
        pieces.append(decoded.text)
        repaired |= decoded.repaired
        del pending[:run]
    return repaired


def _word_bytes(encoding: str, encoded: str) -> bytes:
    raw = encoded.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(raw, header=True)
    return decode_base64(raw)


def decode_base64(raw: bytes) -> bytes:
    """Base64 that tolerates missing padding and stray characters, as real mail needs."""
    try:
        return binascii.a2b_base64(raw)  # skips line breaks and other non-alphabet bytes itself
    except binascii.Error:
        pass
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    clean = clean[: len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        if codec == ISO2022JP:
            return _decode_iso2022jp(data)
        if codec == EUCJP:
            return _decode_eucjp(data)
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, KeyError, ValueError):
        return None


def _utf8_fits_better(data: bytes, text: str, codec: str) -> bool:
    """UTF-8 sent under another label: a valid UTF-8 reading that looks cleaner wins."""
    if codec == "utf-8":
        return False
    utf8 = _try_decode(data, "utf-8")
    return utf8 is not None and suspicion(utf8, "utf-8") < suspicion(text, codec)


def _detect(data: bytes) -> str | None:
    best = charset_normalizer.from_bytes(data[:_SAMPLE_CHARS]).best()
    if best is None:
        return None
    codec = "cp1252" if "cp1252" in best.could_be_from_charset else codec_for(best.encoding)
    return _try_decode(data, codec) if codec and codec not in _CJK_CANDIDATES else None


def _decode_single_byte(data: bytes) -> str:
    text = _try_decode(data, "cp1252")
    return text if text is not None else data.decode("latin-1")


@cache
def _jis_to_sjis_table() -> dict[bytes, bytes]:
    """JIS X 0208 row/cell -> Shift_JIS bytes, covering the NEC and IBM rows CP932 adds."""
    table = {}
    for j1 in range(0x21, 0x7F):
        s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
        for j2 in range(0x21, 0x7F):
            s2 = j2 + 0x1F + (1 if j2 + 0x1F >= 0x7F else 0) if j1 % 2 else j2 + 0x7E
            table[bytes((j1, j2))] = bytes((s1, s2))
    return table


def _jis0208(segment: bytes) -> str:
    """Double-byte JIS via CP932, so Outlook's ①, ㈱, Ⅲ and 髙 decode (CP50221)."""
    table = _jis_to_sjis_table()
    return _JIS_PAIR.sub(lambda m: table[m.group()], segment).decode("cp932")


def _iso2022_segment(escape: bytes, segment: bytes) -> str:
    if escape in (b"", b"\x1b(B", b"\x1b(H", b"\x0f"):
        return segment.decode("ascii")
    if escape == b"\x1b(J":
        # JIS X 0201 Roman (WHATWG Encoding Standard, ISO-2022-JP decoder).
        return segment.decode("ascii").replace("\\", "\u00a5").replace("~", "\u203e")
    if escape in (b"\x1b$@", b"\x1b$B", b"\x1b$(B", b"\x1b$(@"):
        return _jis0208(segment)
    if escape in (b"\x1b(I", b"\x0e"):
        return bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in segment).decode("cp932")
    for codec in ("iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"):
        try:
            return (escape + segment).decode(codec)
        except UnicodeDecodeError:
            continue
    raise ValueError("unsupported ISO-2022 designation")


def _decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it; plain ISO-2022-JP is a subset (RFC 1468)."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    parts = _ISO2022_SPLIT.split(data)
    pieces = [_iso2022_segment(b"", parts[0])]
    for index in range(1, len(parts), 2):
        pieces.append(_iso2022_segment(parts[index], parts[index + 1]))
    return "".join(pieces)


def _euc_to_sjis(match: re.Match[bytes]) -> bytes:
    char = match.group()
    if char[0] == 0x8E:
        return char[1:]
    if char[0] == 0x8F:
        return char.decode("euc_jp").encode("cp932")  # JIS X 0212 kanji CP932 also has
    return _jis_to_sjis_table()[bytes((char[0] & 0x7F, char[1] & 0x7F))]


def _decode_eucjp(data: bytes) -> str:
    """EUC-JP, then CP51932 (NEC/IBM extensions), then EUC-JIS-2004 (JIS X 0213)."""
    try:
        return data.decode("euc_jp")
    except UnicodeDecodeError:
        pass
    try:
        return _EUC_CHAR.sub(_euc_to_sjis, data).decode("cp932")
    except (UnicodeError, KeyError):
        return data.decode("euc_jis_2004")

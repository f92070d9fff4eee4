"""Charset handling: Japanese supersets, wrong and missing declarations, RFC 2047 words."""
from __future__ import annotations

import base64

import pytest

from plugin.parse.charsets import Decoded, codec_for, decode_text, decode_words, guess_text


def _jis(text: str) -> bytes:
    """ISO-2022-JP as Outlook writes it (CP50221): CP932 characters in ESC $ B runs."""
    out, kanji = bytearray(), False
    for char in text:
        if char.isascii():
            out += b"\x1b(B" if kanji else b""
            kanji = False
            out += char.encode()
            continue
        out += b"" if kanji else b"\x1b$B"
        kanji = True
        s1, s2 = char.encode("cp932")
        row = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) * 2 - 1
        if s2 >= 0x9F:
            out += bytes((row + 1, s2 - 0x7E))
        else:
            out += bytes((row, s2 - 0x1F - (1 if s2 >= 0x80 else 0)))
    return bytes(out + (b"\x1b(B" if kanji else b""))


@pytest.mark.parametrize("label, codec", [
    ("Shift_JIS", "cp932"), ("x-sjis", "cp932"), ("iso-2022-jp-ms", "x-iso-2022-jp-ms"),
    ("EUC-JP", "x-euc-jp-ms"), ("gb2312", "gb18030"), ("ks_c_5601-1987", "cp949"),
    ('"UTF-8"', "utf-8"), ("utf-8*ja", "utf-8"), ("unknown-8bit", None), ("x-no-such", None),
])
def test_labels_map_to_the_superset_senders_really_use(label: str, codec: str | None) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize("text", ["①②③ ㈱テスト 第Ⅲ期", "髙橋 﨑山", "ＲＥ：お世話になっております"])
def test_iso2022jp_with_nec_and_ibm_extensions_decodes(text: str) -> None:
    assert decode_text(_jis(text), "iso-2022-jp") == Decoded(text, False)


def test_plain_iso2022jp_decodes_with_python_codec() -> None:
    text = "お世話になっております。"
    assert decode_text(text.encode("iso2022_jp"), "ISO-2022-JP").text == text


def test_shift_jis_label_decodes_cp932_characters() -> None:
    assert decode_text("①髙﨑～".encode("cp932"), "Shift_JIS") == Decoded("①髙﨑～", False)


def test_euc_jp_with_nec_row13_decodes_as_cp51932() -> None:
    data = "障害".encode("euc_jp") + bytes((0xAD, 0xA1))
    assert decode_text(data, "euc-jp") == Decoded("障害①", False)


def test_euc_jis_2004_characters_decode() -> None:
    assert decode_text("𠮟る".encode("euc_jis_2004"), "EUC-JP").text == "𠮟る"


def test_gb2312_label_with_gb18030_text() -> None:
    text = "发现最美车间主任 𠀀"
    assert decode_text(text.encode("gb18030"), "gb2312") == Decoded(text, False)


def test_korean_label_decodes_cp949() -> None:
    assert decode_text("똠방각하".encode("cp949"), "ks_c_5601-1987").text == "똠방각하"


def test_iso_8859_1_label_reads_windows_1252_quotes() -> None:
    assert decode_text(b"\x93quoted\x94 \x80 5", "iso-8859-1") == Decoded("\u201cquoted\u201d \u20ac 5", False)


def test_utf7_is_decoded() -> None:
    assert decode_text("Grüße".encode("utf-7"), "utf-7").text == "Grüße"


def test_seven_bit_jis_without_declaration_is_repaired() -> None:
    assert decode_text(_jis("パスワード"), None) == Decoded("パスワード", True)


def test_shift_jis_declared_as_iso2022jp_is_repaired() -> None:
    assert decode_text("印刷ができません".encode("cp932"), "iso-2022-jp") == Decoded("印刷ができません", True)


def test_utf8_declared_as_latin1_is_repaired() -> None:
    assert decode_text("Grüße aus München".encode(), "iso-8859-1") == Decoded("Grüße aus München", True)


def test_genuine_latin1_stays_latin1() -> None:
    assert decode_text("Grüße aus München".encode("latin-1"), "iso-8859-1") == Decoded("Grüße aus München", False)


def test_ascii_declaration_with_8bit_utf8_is_repaired() -> None:
    assert decode_text("Büro".encode(), "us-ascii") == Decoded("Büro", True)


@pytest.mark.parametrize("text, codec", [
    ("お問い合わせありがとうございます。ログインできません。", "euc_jp"),
    ("お問い合わせありがとうございます。ログインできません。", "cp932"),
    ("お問い合わせありがとうございます。", "utf-8"),
    ("Привет, как дела? Всё хорошо, спасибо.", "cp1251"),
])
def test_undeclared_text_is_detected(text: str, codec: str) -> None:
    assert guess_text(text.encode(codec)) == text


def test_encoded_words_split_inside_a_character_are_joined() -> None:
    raw = "ＲＥ：至急".encode()
    words = [f"=?UTF-8?B?{base64.b64encode(raw[i:i + 4]).decode()}?=" for i in range(0, len(raw), 4)]
    assert decode_words(" ".join(words)).text == "ＲＥ：至急"


def test_whitespace_between_encoded_words_is_dropped_but_kept_around_text() -> None:
    value = "=?Windows-1252?Q?Hans_B=C4KO?= =?iso-8859-15?q?Sch=F6nland?= (Sales) =?utf-8?q?x?="
    assert decode_words(value).text == "Hans BÄKOSchönland (Sales) x"


def test_encoded_word_with_wrong_charset_is_repaired() -> None:
    value = f"=?us-ascii?B?{base64.b64encode('日本語'.encode()).decode()}?="
    assert decode_words(value) == Decoded("日本語", True)


@pytest.mark.parametrize("label, codec", [
    ("cp-850", "cp850"), ("CP-1252", "cp1252"), ("win-1251", "cp1251"), ("x-cp1250", "cp1250"),
    ("utf8", "utf-8"), ("latin1", "cp1252"), ("latin-9", "iso8859-15"), ("iso-8859-8-i", "iso8859-8"),
    ("x-mac-roman", "mac-roman"), ("koi8r", "koi8-r"), ("unicode-1-1-utf-7", "utf-7"),
    ("windows-874", "cp874"), ("big5-hkscs", "big5hkscs"), ("x-gbk", "gb18030"), ("x-unknown", None),
])
def test_label_spellings_real_mailers_write(label: str, codec: str | None) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize("text, codec, label", [
    ("Grüße, Ça va?", "cp850", "cp-850"),
    ("镕喆 测试", "gbk", "gb2312"),  # GBK-only characters under the GB2312 label
    ("香港 㗎 嘅", "big5hkscs", "big5-hkscs"),
    ("ภาษาไทย “quoted”", "cp874", "windows-874"),
    ("한국어 안내", "cp949", "ks_c_5601-1987"),
])
def test_aliased_labels_decode_without_repair(text: str, codec: str, label: str) -> None:
    assert decode_text(text.encode(codec), label) == Decoded(text, False)


def test_unknown_label_with_utf8_is_guessed() -> None:
    assert decode_text("Drucker im Büro".encode(), "x-unknown") == Decoded("Drucker im Büro", True)


def test_utf7_encoded_word() -> None:
    assert decode_words("=?unicode-1-1-utf-7?Q?Gr+APwA3w-e?=").text == "Gr\u00fc\u00dfe"

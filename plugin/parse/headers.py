"""Header fields as text: decoded values, address lists, Message-IDs and dates."""
from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime
from email.message import Message

from plugin.domain import Address
from plugin.parse import budget
from plugin.parse.charsets import decode_header_bytes, decode_words

FOLDED_LINE_BREAK = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
_ATOM = re.compile(r'[^\s"(),;:<>]+')
_EMAIL = re.compile(r"(?<![^\s<>()\"',;:])[^\s<>()\"',;:@]++@[^\s<>()\"',;:]+")


class Headers:
    """Header fields as sent (raw 8-bit kept), decoded on request."""

    def __init__(self, message: Message, body_charset: str | None = None) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._fields.setdefault(name.strip().lower(), []).append(FOLDED_LINE_BREAK.sub("", value))
        self._body_charset = body_charset
        self.repaired = False

    def raw(self, name: str) -> str | None:
        values = self._fields.get(name.lower())
        return values[0] if values else None

    def text(self, name: str) -> str:
        """An unstructured field (RFC 5322 section 3.2.5) as text: charset and encoded-words decoded."""
        value = self.raw(name)
        return "" if value is None else self._decode(value).strip()

    def addresses(self, name: str, keep_bare: bool = False) -> tuple[Address, ...]:
        """Every address in every such field; bare words without @ only when keep_bare."""
        found = []
        for value in self._fields.get(name.lower(), []):
            for display, address in _address_list(self._unescape_8bit(value)):
                if address and (keep_bare or "@" in address):
                    found.append(Address(_unquoted(self._decode(display)), address))
        return tuple(found)

    def _decode(self, value: str) -> str:
        decoded = decode_words(self._unescape_8bit(value))
        self.repaired |= decoded.repaired
        return decoded.text.replace("\r", "").replace("\n", "")

    def _unescape_8bit(self, value: str) -> str:
        """Raw 8-bit header bytes (RFC 6532 UTF-8, or GBK, Big5, Shift_JIS or Latin-1 from old
        mailers) as text: bytes that are not UTF-8 are read in the charset the body declares, as
        Thunderbird does, when that reads plausibly, else in the charset they fit."""
        if value.isascii():
            return value
        try:
            raw = value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return value  # already text
        decoded = decode_header_bytes(raw, self._body_charset)
        self.repaired |= decoded.repaired
        return decoded.text


def _unquoted(name: str) -> str:
    """A display name without the quotes Outlook puts around it inside quoted or encoded text."""
    name = name.strip()
    while len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1].strip()
    return name


def _address_list(value: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address-list (RFC 5322 section 3.4), leniently."""
    pairs = []
    chunk: list[tuple[str, str]] = []
    for kind, text in [*_tokens(value), ("special", ",")]:
        if kind == "special" and text == ":" and not any(k == "angle" for k, _ in chunk):
            chunk = []  # RFC 5322 group: its display name is not a mailbox
        elif kind == "special":
            budget.check()
            if chunk:
                pairs.append(_mailbox(chunk))
            chunk = []
        else:
            chunk.append((kind, text))
    return pairs


def _tokens(value: str) -> list[tuple[str, str]]:
    """Quoted strings, comments, angle addresses, specials, words and spaces of a header value."""
    tokens = []
    position = 0
    while position < len(value):
        char = value[position]
        word = _ENCODED_WORD.match(value, position)
        if word:
            tokens.append(("atom", word.group()))
            position = word.end()
        elif char == '"':
            position = _quoted(value, position, tokens)
        elif char == "(":
            position = _comment(value, position, tokens)
        elif char == "<":
            end = value.find(">", position)
            end = len(value) if end < 0 else end
            tokens.append(("angle", value[position + 1:end]))
            position = end + 1
        elif char in ",;:":
            tokens.append(("special", char))
            position += 1
        elif char.isspace() or char in ">)":  # stray closing brackets separate words
            tokens.append(("space", " "))
            position += 1
        else:
            atom = _ATOM.match(value, position)
            end = atom.end() if atom else position + 1  # _ATOM takes every character not handled above
            tokens.append(("atom", value[position:end]))
            position = end
    return tokens


def _quoted(value: str, position: int, tokens: list[tuple[str, str]]) -> int:
    text = []
    position += 1
    while position < len(value) and value[position] != '"':
        if value[position] == "\\" and position + 1 < len(value):
            position += 1
        text.append(value[position])
        position += 1
    tokens.append(("quoted", "".join(text)))
    return position + 1


def _comment(value: str, position: int, tokens: list[tuple[str, str]]) -> int:
    depth, start = 0, position
    while position < len(value):
        if value[position] == "\\":
            position += 1
        elif value[position] == "(":
            depth += 1
        elif value[position] == ")":
            depth -= 1
            if depth == 0:
                break
        position += 1
    tokens.append(("comment", value[start + 1:position].strip()))
    return position + 1


def _mailbox(chunk: list[tuple[str, str]]) -> tuple[str, str]:
    """One mailbox: name-addr, addr-spec with a comment, or the broken shapes real mail has."""
    comments = " ".join(text for kind, text in chunk if kind == "comment" and text)
    angle = next((text for kind, text in chunk if kind == "angle"), None)
    words = _words(chunk)
    if angle is not None:
        address = re.sub(r"\s+", "", angle.removeprefix("mailto:"))
        return " ".join(words) or comments, address.split(":")[-1] if address.startswith("@") else address
    with_at = [index for index, word in enumerate(words) if "@" in word]
    if with_at:
        address = words.pop(with_at[-1])
        if address.startswith('"') and address.endswith('"') and address.count('"') == 2:
            address = address[1:-1]  # the whole address was quoted, e.g. "a@example.com"
        return " ".join(words) or comments, address
    in_comment = _EMAIL.search(comments)
    if in_comment:
        return " ".join(words), in_comment.group()  # Name (address@example.com)
    return comments, " ".join(words)


def _words(chunk: list[tuple[str, str]]) -> list[str]:
    """Space-separated words; quoted strings keep their quotes when glued to other text."""
    words: list[str] = []
    current: list[tuple[str, str]] = []
    for kind, text in [*chunk, ("space", " ")]:
        if kind in ("atom", "quoted"):
            current.append((kind, text))
            continue
        if kind == "space" and current:
            if len(current) == 1:
                words.append(current[0][1])
            else:
                words.append("".join(f'"{t}"' if k == "quoted" else t for k, t in current))
            current = []
    return words


def _readable(value: str) -> str:
    """Raw 8-bit header bytes as UTF-8 text (RFC 6532), never as lone surrogates a database refuses."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def message_id_of(value: str | None) -> str | None:
    """A Message-ID without its angle brackets (RFC 5322 section 3.6.4)."""
    if not value:
        return None
    value = _readable(value)
    match = _ANGLE_ID.search(value)
    found = (match.group(1) if match else value).strip()
    return found.split()[0] if found else None


def message_ids_of(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    value = _readable(value)
    ids = [i.strip() for i in _ANGLE_ID.findall(value) if i.strip()]
    return tuple(ids or value.split())


def date_of(value: str | None) -> datetime | None:
    """The Date field as an aware datetime; a zone of -0000 (RFC 5322 section 3.3) is read as UTC."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

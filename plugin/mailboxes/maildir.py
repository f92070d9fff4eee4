"""A local Maildir (the link's host is the folder path): demo mode and hand-delivered mail.

Labels are Maildir keywords the way Dovecot stores them: a lowercase flag letter per keyword,
its name listed in the folder's `dovecot-keywords` file, so the same folder can be served by IMAP.
"""
from __future__ import annotations

import mailbox
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from plugin.domain import Link, MailRef, Outcome, RawMail
from plugin.errors import RetryLater


class MaildirMailbox:
    def __init__(self, link: Link, box: mailbox.Maildir, root: Path) -> None:
        self._link = link
        self._box = box
        self._root = root
        self._letters = self._keyword_letters()

    @classmethod
    def connect(cls, link: Link) -> MaildirMailbox:
        root = Path(link.host)
        try:
            return cls(link, mailbox.Maildir(root, create=True), root)
        except OSError as exc:
            raise RetryLater(f"cannot open Maildir {root}: {exc.strerror}") from exc

    def _keyword_letters(self) -> dict[str, str]:
        """Keyword -> flag letter, adding ours to dovecot-keywords when missing."""
        path = self._root / "dovecot-keywords"
        names = {}
        if path.is_file():
            for line in path.read_text("ascii").splitlines():
                index, _, name = line.partition(" ")
                names[name] = int(index)
        for label in (self._link.processed_label, self._link.rejected_label):
            names.setdefault(label, max(names.values(), default=-1) + 1)
        path.write_text("".join(f"{i} {n}\n" for n, i in sorted(names.items(), key=lambda x: x[1])), "ascii")
        return {name: chr(ord("a") + index) for name, index in names.items()}

    def unhandled(self) -> list[MailRef]:
        ours = {self._letters[self._link.processed_label], self._letters[self._link.rejected_label]}
        since = self._link.import_since
        refs = []
        for key in sorted(self._box.keys()):
            message = self._box.get_message(key)
            flags = set(message.get_flags())
            if "S" in flags or "T" in flags or flags & ours:
                continue
            # The delivery time Maildir keeps (the file's mtime): mail from before the first-import time stays.
            if since and datetime.fromtimestamp(message.get_date(), UTC) < since:
                continue
            with self._box.get_file(key) as file:
                file.seek(0, os.SEEK_END)  # mailbox._ProxyFile.seek returns None, unlike io's seek
                refs.append(MailRef(self._link.id, key, file.tell()))
        return refs

    def fetch(self, ref: MailRef) -> RawMail:
        return RawMail(ref, self._box.get_bytes(ref.uid))

    def headers(self, ref: MailRef) -> bytes | None:
        with self._box.get_file(ref.uid) as file:
            lines = []
            for line in file:
                if not line.strip():
                    break
                lines.append(line)
        return b"".join(lines)

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        if not outcome.state.is_final or ref.uid not in self._box:
            return
        message = self._box.get_message(ref.uid)
        label = self._link.rejected_label if outcome.state.labels_as_rejected else self._link.processed_label
        message.set_subdir("cur")
        message.add_flag("S" + self._letters[label])
        self._box[ref.uid] = message

    def probe(self) -> None:
        """A local folder: listing it is the whole check."""
        self.unhandled()

    def close(self) -> None:
        self._box.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The shared real-mail corpus (../shared/corpus), read as its README describes."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@dataclass(frozen=True)
class CorpusCase:
    corpus: str
    file: str
    path: Path
    expect: dict

    def __str__(self) -> str:
        return self.file


def corpus_cases(name: str) -> list[CorpusCase]:
    folder = CORPUS_DIR / name
    lines = (folder / "expectations.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [CorpusCase(r["corpus"], r["file"], folder / r["eml_path"], r["expect"]) for r in rows]

"""The shared real-mail corpus (../shared/corpus), read as its README describes."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path:
    """The project's shared/ folder: $JSM_MAIL_SHARED_DIR, beside this checkout, or beside the
    repository it was cloned from (a throw-away clone elsewhere still finds the corpus)."""
    if os.environ.get("JSM_MAIL_SHARED_DIR"):
        return Path(os.environ["JSM_MAIL_SHARED_DIR"])
    candidates = [REPO_DIR.parent / "shared"]
    origin = subprocess.run(["git", "-C", str(REPO_DIR), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and "://" not in origin and ":" not in origin.split("/")[0]:
        candidates.append((REPO_DIR / origin).resolve().parent / "shared")
    return next((c for c in candidates if (c / "corpus").is_dir()), candidates[0])


SHARED_DIR = find_shared_dir()
CORPUS_DIR = SHARED_DIR / "corpus"


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

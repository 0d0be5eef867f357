"""Bundled reference tables (nicknames, street words, states) shared by the standardisers."""

from __future__ import annotations

import csv
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# What people type when a form insists on a value they do not have to give: a placeholder in
# any field, never a name or an address.
PLACEHOLDERS: tuple[str, ...] = (
    "n/a",
    "na",
    "none",
    "null",
    "unknown",
    "test",
    "-",
    ".",
    "?",
    "xxx",
    "nil",
    "nan",
    "undefined",
    "not provided",
    "not applicable",
    "notprovided",
    "notapplicable",
    "tbd",
    "tba",
    "xx",
    "xxxx",
    "xxxxx",
    "asdf",
    "unk",
)


def read_pairs(source: Path) -> tuple[list[str], list[str]]:
    """Two-column reference CSV as key and value lists; the first spelling of a key wins."""
    keys: list[str] = []
    values: list[str] = []
    seen: set[str] = set()
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) < 2:
                continue
            key, value = row[0].strip().lower(), row[1].strip().lower()
            if key and value and key not in seen:
                seen.add(key)
                keys.append(key)
                values.append(value)
    return keys, values

"""How a benchmark hands its ratios to benchmarks/run.py: one JSON object per line on stdout, tables on stderr.

    import jsonrows
    jsonrows.people_to_stderr()      # from here on print() goes to stderr
    jsonrows.emit("rank", "all-pairs / sort", 812.4, detail="N=2,000 images")

A row is {"bench", "ratio" (what is divided by what), "value" (the number), "unit" ("x" for a ratio, "fraction"
for a share), "detail"}; both sides of every ratio are measured in the same run of the same script.
"""

from __future__ import annotations

import json
import math
import sys

_STDOUT = sys.stdout
UNITS = ("x", "fraction")


def people_to_stderr() -> None:
    """Send every later print() to stderr, so stdout carries nothing but rows."""
    sys.stdout = sys.stderr


def emit(bench: str, ratio: str, value: float, *, unit: str = "x", detail: str = "") -> dict:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{bench}: {ratio} is {value}")
    row = {"bench": bench, "ratio": ratio, "value": value, "unit": unit, "detail": detail}
    print(json.dumps(row), file=_STDOUT, flush=True)
    return row


def parse(line: str) -> dict:
    """One row read back (run.py and the tests), or ValueError saying what is wrong with it."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError(f"not a JSON object: {line[:80]!r}")
    missing = [k for k in ("bench", "ratio", "value", "unit", "detail") if k not in row]
    if missing:
        raise ValueError(f"row lacks {', '.join(missing)}: {line[:80]!r}")
    if not isinstance(row["value"], (int, float)) or isinstance(row["value"], bool) or row["unit"] not in UNITS:
        raise ValueError(f"bad value or unit: {line[:80]!r}")
    return row

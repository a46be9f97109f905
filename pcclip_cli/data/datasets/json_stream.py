"""Read a large JSON object one top-level array element at a time, so memory follows the element, not the file.

The standard library parses whole documents only. COCO's annotation files are one object whose big members are
arrays of small objects (`images`, `annotations`); this reader walks the top-level object itself and hands each
array element to `json.JSONDecoder.raw_decode`, holding at most one read chunk plus one element in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from pcclip_cli.core.errors import DataError

_SPACE = re.compile(r"[ \t\n\r]*")
CHUNK_CHARS = 1 << 20
# No element of a real annotation file comes near this; a larger one means the file is not what it claims to be,
# and stopping bounds the memory a malformed file can take.
MAX_ELEMENT_CHARS = 64 << 20


class JsonObjectStream:
    """Iterate over the members of a file holding one JSON object: `members()` yields (key, value) for scalar and
    object members, and (key, ArrayElements) for array members, whose elements must be consumed before the next
    member is read (the iterator does this itself when the caller does not)."""

    def __init__(self, path: str | Path, *, chunk_chars: int = CHUNK_CHARS, what: str = "JSON file"):
        self.path = Path(path)
        self.what = what
        self.chunk_chars = chunk_chars
        self._decoder = json.JSONDecoder()
        self._fh = None
        self._buf = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer, for error positions
        self._eof = False

    # -- buffer -------------------------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read one more chunk; False at end of file."""
        if self._eof:
            return False
        text = self._fh.read(self.chunk_chars)
        if not text:
            self._eof = True
            return False
        if self._pos:
            # Drop what is already parsed, so the buffer never holds more than the unparsed tail.
            self._consumed += self._pos
            self._buf = self._buf[self._pos:]
            self._pos = 0
        self._buf += text
        return True

    def _peek(self) -> str | None:
        """The next non-space character (not consumed), or None at end of file."""
        while True:
            self._pos = _SPACE.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return None

    def _fail(self, message: str) -> DataError:
        return DataError(f"{self.path}: {message} (at character {self._consumed + self._pos}); "
                         f"this is not a valid {self.what}")

    def _expect(self, chars: str) -> str:
        ch = self._peek()
        if ch is None or ch not in chars:
            found = "end of file" if ch is None else repr(ch)
            raise self._fail(f"expected {' or '.join(repr(c) for c in chars)}, found {found}")
        self._pos += 1
        return ch

    def _value(self):
        """Decode one complete JSON value starting at the next non-space character."""
        if self._peek() is None:
            raise self._fail("unexpected end of file")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if len(self._buf) - self._pos > MAX_ELEMENT_CHARS:
                    raise self._fail(f"a value longer than {MAX_ELEMENT_CHARS} characters") from None
                if self._fill():
                    continue  # most likely cut by the chunk boundary: read on and decode again
                raise self._fail(f"malformed JSON ({exc.msg})") from None
            except RecursionError:
                raise self._fail("JSON nested too deeply") from None
            # A number ending exactly at the buffer's end may continue in the next chunk.
            if end == len(self._buf) and self._fill():
                continue
            self._pos = end
            return value

    # -- structure ----------------------------------------------------------------------------------------------

    def members(self) -> Iterator[tuple[str, object]]:
        try:
            self._fh = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{self.what} not found: {self.path}") from None
        except IsADirectoryError:
            raise DataError(f"{self.what} is a directory, expected a JSON file: {self.path}") from None
        try:
            if self._peek() != "{":
                raise self._fail("the file does not hold a JSON object")
            self._pos += 1
            if self._peek() == "}":
                self._pos += 1
                return
            while True:
                if self._peek() != '"':
                    raise self._fail("expected a member name")
                key = self._value()
                self._expect(":")
                if self._peek() == "[":
                    self._pos += 1
                    elements = self._elements()
                    yield key, elements
                    for _ in elements:  # the caller left some unread: skip them
                        pass
                else:
                    yield key, self._value()
                if self._expect(",}") == "}":
                    break
            if self._peek() is not None:
                raise self._fail("text after the top-level object")
        except UnicodeDecodeError:
            raise DataError(f"{self.path}: not valid UTF-8; a {self.what} is UTF-8 JSON") from None
        finally:
            self._fh.close()

    def _elements(self) -> Iterator:
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            if self._expect(",]") == "]":
                return

"""Text from a request made safe to log: control characters escaped.

A request's path (percent-decoded), method or any other value it chose may
hold CR, LF, ESC or Unicode line separators; written raw, they would start
a second, genuine-looking log line or drive the terminal of whoever reads
the log. Escaped (`\\n`, `\\x1b`, `\\u2028`), each request stays one line.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: str) -> str:
    """`text` with every control character written as its escape; a
    backslash is doubled, so an escape in the log cannot be forged either."""
    return _CONTROL.sub(_escape, text.replace("\\", "\\\\"))

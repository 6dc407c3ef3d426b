"""What PostgreSQL cannot store in jsonb/text columns, found before the insert fails."""

from __future__ import annotations

from typing import Any, Literal

Unstorable = Literal["nul", "surrogate"]


def find_unstorable_text(value: Any) -> Unstorable | None:
    """``"nul"`` or ``"surrogate"`` for the first string (key or value, at any depth) that
    PostgreSQL would reject — a NUL character, or text without a UTF-8 form — else None.

    Iterative, so no depth of nesting can exhaust the stack; it walks the strings
    themselves because json.dumps would hide a NUL as the escape "\\u0000".
    """
    stack: list[Any] = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, str):
            if "\x00" in current:
                return "nul"
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                return "surrogate"
    return None

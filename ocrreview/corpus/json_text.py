"""What valid JSON may hold that no PostgreSQL text or jsonb column keeps: a NUL (\\u0000),
and a lone surrogate escape (\\ud800), which is no character and which no encoding writes.
Either would fail the request as it is stored, with an error no form catches."""


def unstorable(value) -> str | None:
    """What the first such string in `value`, keys included, holds; None when all are text.
    A walk with a stack of its own: JSON nested as deep as the parser reads it would take
    this past the interpreter's recursion limit."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a NUL character (\\u0000)"
            if not item.isascii() and any("\ud800" <= c <= "\udfff" for c in item):
                return "a lone surrogate (a \\ud800 to \\udfff escape without its pair)"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None

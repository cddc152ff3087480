"""What valid JSON may hold that no PostgreSQL text or jsonb column keeps: a NUL (\\u0000),
and a lone surrogate escape (\\ud800), which is no character and which no encoding writes.
Either would fail the request as it is stored, with an error no form catches."""


def unstorable(value) -> str | None:
    """What the first such string in `value`, keys included, holds; None when all are text."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (\\u0000)"
        if not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value):
            return "a lone surrogate (a \\ud800 to \\udfff escape without its pair)"
        return None
    if isinstance(value, dict):
        parts = (part for pair in value.items() for part in pair)
        return next((found for part in parts if (found := unstorable(part))), None)
    if isinstance(value, list):
        return next((found for item in value if (found := unstorable(item))), None)
    return None

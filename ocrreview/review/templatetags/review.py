import unicodedata

from django import template
from django.utils.html import format_html

from ocrreview.review import assets

register = template.Library()


@register.filter
def band(line) -> str:
    """The colour class of a line in the page view: how much a human should look at it."""
    if line.status == "reviewed":
        return "reviewed"
    if line.confidence is None:
        return "unknown"
    if line.confidence < 0.5:
        return "low"
    if line.confidence < 0.8:
        return "mid"
    return "high"


@register.filter
def percent(value) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.0f}%"


@register.filter
def editor_time(milliseconds: int) -> str:
    """The editor's time on a day's lines, as a coordinator reads it: 40 s, 12 min, 3 h 05."""
    seconds = round(milliseconds / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02}"


@register.filter
def bbox_attr(bbox) -> str:
    return ",".join(str(int(v)) for v in bbox)


@register.filter
def rect(bbox) -> dict[str, int]:
    x0, y0, x1, y1 = (int(v) for v in bbox)
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


@register.filter
def text_lang(collection) -> str:
    """The lang attribute of an element holding the collection's line texts, for screen
    readers to read them in the right voice; none where the collection names no language."""
    return format_html(' lang="{}"', collection.language) if collection.language else ""


@register.filter
def character_name(character: str) -> str:
    """What a screen reader should say for a palette key: "LATIN SMALL LETTER LONG S", where
    it would read "ſ" as nothing, or as "s"."""
    return " ".join(unicodedata.name(c, c).lower() for c in character)


@register.simple_tag
def versioned_static(path: str) -> str:
    """A static file's URL that changes with its content (review.assets)."""
    return assets.versioned_url(path)


@register.simple_tag
def page_view_scripts_version() -> str:
    return assets.version(*assets.PAGE_VIEW_SCRIPTS)

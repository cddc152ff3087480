"""Handwriting fonts, with held-out families, and printed faces.

Two sources, both installed by `scripts/setup_venv.sh`: Debian packages (requirements-apt.txt)
and Google Fonts' handwriting families as packaged by Fontsource on npm (npm-fonts/package.json).
Debian alone gives about ten hands; a model trained on so few reads them and little else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont

# Some Debian fonts have harmless quirks in tables we never read ("extra bytes in post").
logging.getLogger("fontTools").setLevel(logging.ERROR)

FONTSOURCE_DIR = Path(__file__).with_name("npm-fonts") / "node_modules" / "@fontsource"
FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    FONTSOURCE_DIR,
)

# Fontsource ships every subset in WOFF and WOFF2; the Latin subset in zlib-compressed WOFF is
# all we need and FreeType and fontTools read it without a brotli decoder.
FONTSOURCE_FILE = re.compile(r"^(?P<family>[a-z0-9-]+)-latin-\d{3}-(normal|italic)\.woff$")

# File stem -> (family, capitals only). Families, not files, are held out, so a held-out hand is
# never seen in any weight or slant.
KNOWN_FONTS: dict[str, tuple[str, bool]] = {
    "Delphine": ("Delphine", False),
    "SteveHand": ("SteveHand", False),
    "Kristi": ("Kristi", False),
    "dkg": ("dkg", False),
    "dkgBI": ("dkg", False),
    "dkgBd": ("dkg", False),
    "dkgIt": ("dkg", False),
    "Breip": ("Breip", False),
    "breipfont": ("Breip", False),
    "Rufscript010": ("Rufscript", False),
    "Ecolier-court": ("Ecolier", False),
    "Purisa": ("Purisa", False),
    "Purisa-Bold": ("Purisa", False),
    "Purisa-Oblique": ("Purisa", False),
    "Purisa-BoldOblique": ("Purisa", False),
    "DancingScript-Regular": ("DancingScript", False),
    "DancingScript-Bold": ("DancingScript", False),
    "BecauseWeBuild-Regular": ("BecauseWe", True),
    "BecauseWeConnect-Regular": ("BecauseWe", True),
    "BecauseWeCreate-Regular": ("BecauseWe", True),
    "BecauseWeLearn-Regular": ("BecauseWe", True),
    "BecauseWeMentor-Regular": ("BecauseWe", True),
    "BecauseWeOrganize-Regular": ("BecauseWe", True),
    "Humor-Sans": ("HumorSans", True),
    "TomsonTalks": ("TomsonTalks", True),
}

HELD_OUT_FAMILIES: frozenset[str] = frozenset({"SteveHand", "Breip"})

# Typewriter and book faces from Fontsource, for typed and printed pages of archives.
PRINTED_FAMILIES: frozenset[str] = frozenset(
    {
        "special-elite",
        "cutive-mono",
        "courier-prime",
        "eb-garamond",
        "libre-caslon-text",
        "old-standard-tt",
        "im-fell-english",
        "libre-baskerville",
    }
)


@dataclass(frozen=True)
class FontSpec:
    path: Path
    family: str
    caps_only: bool
    charset: frozenset[str]

    def covers(self, text: str) -> bool:
        return all(ch == " " or ch in self.charset for ch in text)


def _charset(path: Path) -> frozenset[str]:
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return frozenset(chr(code) for code in cmap)


def _font_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        if directory.is_dir():
            files.extend(
                p for p in directory.rglob("*") if p.suffix.lower() in {".ttf", ".otf", ".woff"}
            )
    return sorted(files)


def _family(path: Path) -> tuple[str, bool] | None:
    """(family, capitals only) of a handwriting font we know, else None."""
    fontsource = FONTSOURCE_FILE.match(path.name)
    if fontsource is not None:
        return fontsource["family"], False
    return KNOWN_FONTS.get(path.stem)


@lru_cache(maxsize=8)
def _discover(dirs: tuple[Path, ...]) -> tuple[FontSpec, ...]:
    specs = []
    for path in _font_files(dirs):
        known = _family(path)
        if known is not None:
            specs.append(FontSpec(path, known[0], known[1], _charset(path)))
    return tuple(specs)


def discover_fonts(
    held_out: bool = False, dirs: Sequence[Path] = FONT_DIRS, printed: bool | None = False
) -> list[FontSpec]:
    """Training hands, or with `held_out` only the evaluation hands; `printed=True` gives the
    printed faces instead, `printed=None` both."""
    return [
        f
        for f in _discover(tuple(dirs))
        if (f.family in HELD_OUT_FAMILIES) == held_out
        and (printed is None or (f.family in PRINTED_FAMILIES) == printed)
    ]

"""A page's reading order from where its line boxes are, for "Sort this page by position".

Kept simple, and so predictable: columns left to right, each read top to bottom.

- Columns: two boxes that overlap horizontally by at least a third of the narrower one's
  width are in one column, and so are boxes linked through others. Columns with a gutter
  between them stay apart, and so do lines that only reach a little into the next column.
- A line across columns (a heading, a footer, a line the width of the page) is read where it
  stands: it cuts the page across, and the columns above it are read before it, those below
  after it. Columns between two cuts that share no height (a date top right above a
  salutation on the left) are read top to bottom rather than left to right.
- A line across only some columns (a heading over two columns of three) while a column
  beside them runs on past it cuts only its own columns: the page is first split down the
  gutters that run its whole height, and the strips are read left to right, each in turn as
  a page of its own (a recursive XY-cut, across where a line cuts the whole part of the page,
  down where it does not). A margin column far narrower than the columns beside it does not
  stop a cut: its notes are read with the lines they stand beside.
- In a column, boxes go by the height of their middle rather than their top edge: a skewed
  line's box is tall, and its top says little about where the line is. Boxes side by side
  (not overlapping horizontally, but by half the lower one's height vertically: the halves
  of a split line) are read left to right."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import combinations

Box = Sequence[float]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _same_column(a: Box, b: Box) -> bool:
    narrower = min(a[2] - a[0], b[2] - b[0])
    return _overlap(a[0], a[2], b[0], b[2]) >= narrower / 3


def _side_by_side(a: Box, b: Box) -> bool:
    lower = min(a[3] - a[1], b[3] - b[1])
    return _overlap(a[0], a[2], b[0], b[2]) <= 0 and _overlap(a[1], a[3], b[1], b[3]) >= lower / 2


def _middle(box: Box) -> float:
    return (box[1] + box[3]) / 2


def _linked_groups(items: Sequence[int], linked: Callable[[int, int], bool]) -> list[list[int]]:
    """`items` in groups of those linked to each other, directly or through others."""
    parent = {i: i for i in items}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in combinations(items, 2):
        if linked(i, j):
            parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in items:
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _bits(indexes: Iterable[int]) -> int:
    return sum(1 << i for i in indexes)


def _indexes(bits: int) -> Iterator[int]:
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def _across_columns(boxes: Sequence[Box]) -> set[int]:
    """The lines that cut the page across: each reaches into two columns that run side by
    side for three lines or more (not a column's one or two split lines, whose halves sit
    side by side, nor a subheading beside the short end of a paragraph), and no column it
    partly overlaps runs past it (a margin column beside it does not stop it)."""
    # Sets of lines as the bits of an int, so that a page of hundreds of lines takes O(n²).
    count = len(boxes)
    same, level, touching = [0] * count, [0] * count, [0] * count
    for i, j in combinations(range(count), 2):
        if _overlap(boxes[i][0], boxes[i][2], boxes[j][0], boxes[j][2]) > 0:
            touching[i] |= 1 << j
            touching[j] |= 1 << i
        if _same_column(boxes[i], boxes[j]):
            same[i] |= 1 << j
            same[j] |= 1 << i
        elif _overlap(boxes[i][1], boxes[i][3], boxes[j][1], boxes[j][3]) > 0:
            level[i] |= 1 << j
            level[j] |= 1 << i
    cuts = set()
    for i in range(count):
        reached = same[i]
        beside = [j for j in _indexes(reached) if reached & level[j]]
        if len(beside) < 6:
            continue
        middle = _middle(boxes[i])
        others = touching[i] & ~reached
        above = _bits(j for j in _indexes(others) if boxes[j][1] <= middle)
        below = _bits(j for j in _indexes(others) if boxes[j][3] >= middle)
        if not above & below and not any(same[j] & below for j in _indexes(above)):
            cuts.add(i)
    return cuts


def _read_column(boxes: Sequence[Box], column: list[int]) -> list[int]:
    rows: list[list[int]] = []
    for i in sorted(column, key=lambda i: _middle(boxes[i])):
        row = rows[-1] if rows else None
        if row and all(_side_by_side(boxes[i], boxes[j]) for j in row):
            row.append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i][0])]


def _read_between_cuts(boxes: Sequence[Box], part: list[int]) -> list[int]:
    columns = _linked_groups(part, lambda i, j: _same_column(boxes[i], boxes[j]))

    def top(column: list[int]) -> float:
        return min(boxes[i][1] for i in column)

    def bottom(column: list[int]) -> float:
        return max(boxes[i][3] for i in column)

    def left(column: list[int]) -> float:
        return min(boxes[i][0] for i in column)

    # Columns at the same heights are read left to right; those one above the other, in turn.
    tiers = _linked_groups(
        range(len(columns)),
        lambda a, b: (
            _overlap(top(columns[a]), bottom(columns[a]), top(columns[b]), bottom(columns[b])) > 0
        ),
    )
    order = []
    for tier in sorted(tiers, key=lambda tier: min(top(columns[c]) for c in tier)):
        for c in sorted(tier, key=lambda c: left(columns[c])):
            order += _read_column(boxes, columns[c])
    return order


def _strips(boxes: Sequence[Box], part: Iterable[int]) -> list[list[int]]:
    """`part` in strips left to right, split where a gutter runs down its whole height."""
    strips: list[list[int]] = []
    right = float("-inf")
    for i in sorted(part, key=lambda i: boxes[i][0]):
        if boxes[i][0] >= right:
            strips.append([])
        strips[-1].append(i)
        right = max(right, boxes[i][2])
    # In the order of the page's lines, as elsewhere, so that ties are broken as they were.
    return [sorted(strip) for strip in strips]


def _column_runs_past(boxes: Sequence[Box], cut: int, strips: list[list[int]]) -> bool:
    """Whether a strip that `cut` does not reach has lines on both sides of it, so that a cut
    across the page would read that column's top, the cut, then its bottom. A strip less than
    a third as wide as the widest one the cut reaches is a margin and does not count."""
    middle = _middle(boxes[cut])
    spans = [(min(boxes[i][0] for i in s), max(boxes[i][2] for i in s)) for s in strips]
    reaches = [_overlap(x0, x1, boxes[cut][0], boxes[cut][2]) > 0 for x0, x1 in spans]
    widest = max((x1 - x0 for (x0, x1), r in zip(spans, reaches, strict=True) if r), default=0)
    return any(
        not reached
        and x1 - x0 >= widest / 3
        and any(_middle(boxes[i]) <= middle for i in strip)
        and any(_middle(boxes[i]) > middle for i in strip)
        for strip, (x0, x1), reached in zip(strips, spans, reaches, strict=True)
    )


def _read(boxes: Sequence[Box], part: list[int], cuts: set[int]) -> list[int]:
    """`part` of the page in reading order; `cuts` are its lines across columns."""
    if not cuts:
        return _read_between_cuts(boxes, part)
    # The part's columns, or groups of them, without the cuts that would join them.
    strips = _strips(boxes, (i for i in part if i not in cuts))
    # A cut no column runs past cuts the whole part across; the others stay in the pieces
    # between (a subheading over two columns of three, under a heading across all three).
    across = {i for i in cuts if not _column_runs_past(boxes, i, strips)}
    if not across:
        # Every cut here has a column running past it: split the part down its gutters, and
        # each strip's cuts then reach across that strip.
        down = _strips(boxes, part)
        if len(down) > 1:
            return [i for strip in down for i in _read(boxes, strip, cuts.intersection(strip))]
        # No gutter runs down the whole part (a heading over columns 1-2 and another over
        # 2-3): cut across, as if no column ran past, as before.
        across = cuts
    ordered = sorted(across, key=lambda i: (_middle(boxes[i]), boxes[i][0]))
    middles = [_middle(boxes[i]) for i in ordered]
    pieces: list[list[int]] = [[] for _ in range(len(ordered) + 1)]
    for i in part:
        if i not in across:
            pieces[sum(_middle(boxes[i]) > m for m in middles)].append(i)
    order = _read(boxes, pieces[0], cuts.intersection(pieces[0]))
    for cut, piece in zip(ordered, pieces[1:], strict=True):
        order += [cut, *_read(boxes, piece, cuts.intersection(piece))]
    return order


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """The indexes of `boxes` ([x0, y0, x1, y1] each) in reading order."""
    return _read(boxes, list(range(len(boxes))), _across_columns(boxes))

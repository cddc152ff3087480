"""A page's reading order from where its line boxes are, for "Sort this page by position".

Kept simple, and so predictable: columns left to right, each read top to bottom.

- Columns: two boxes that overlap horizontally by at least a third of the narrower one's
  width are in one column, and so are boxes linked through others. Columns with a gutter
  between them stay apart, and so do lines that only reach a little into the next column.
  A line across two columns (a heading) joins them, and such a page is read as one column.
- In a column, boxes go by the height of their middle rather than their top edge: a skewed
  line's box is tall, and its top says little about where the line is. Boxes side by side
  (not overlapping horizontally, but by half the lower one's height vertically: the halves
  of a split line) are read left to right."""

from collections.abc import Sequence

Box = Sequence[float]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _same_column(a: Box, b: Box) -> bool:
    narrower = min(a[2] - a[0], b[2] - b[0])
    return _overlap(a[0], a[2], b[0], b[2]) >= narrower / 3


def _side_by_side(a: Box, b: Box) -> bool:
    lower = min(a[3] - a[1], b[3] - b[1])
    return _overlap(a[0], a[2], b[0], b[2]) <= 0 and _overlap(a[1], a[3], b[1], b[3]) >= lower / 2


def _columns(boxes: Sequence[Box]) -> list[list[int]]:
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i):
            if _same_column(boxes[i], boxes[j]):
                parent[root(i)] = root(j)
    columns: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        columns.setdefault(root(i), []).append(i)
    return sorted(columns.values(), key=lambda column: min(boxes[i][0] for i in column))


def _read_column(boxes: Sequence[Box], column: list[int]) -> list[int]:
    middle = sorted(column, key=lambda i: (boxes[i][1] + boxes[i][3]) / 2)
    rows: list[list[int]] = []
    for i in middle:
        row = rows[-1] if rows else None
        if row and all(_side_by_side(boxes[i], boxes[j]) for j in row):
            row.append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i][0])]


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """The indexes of `boxes` ([x0, y0, x1, y1] each) in reading order."""
    return [i for column in _columns(boxes) for i in _read_column(boxes, column)]

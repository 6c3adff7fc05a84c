"""Where a frame's stored tiles sit in it, for frames stored whole and for frames that lost tiles.

The shared file stores a frame's tiles next to each other in row-major order of their place in the 256×256 frame
(4 rows × 2 columns of 64×128 tiles, ``../shared/data/README.md``), but drops tiles with under 10 % labelled pixels,
so a frame with fewer than 8 tiles does not say which places it lost. The order is kept, so the places are one of the
increasing choices of ``k`` of the 8 cells; :func:`place_tiles` tries each and keeps the one whose joins look most
like one image (each join's gray step against the steps next to it inside the two tiles, as :func:`.frame_shift.seam_ratio`
does for whole frames). Where two choices differ only by a shift of the whole block they join the same tiles the
same way, and either serves: prediction needs the tiles' relative places, not where the block sat in the frame.

:func:`frame_blocks` turns a set of tiles with frame ids into blocks: rectangles of the grid whose cells all hold a
tile, each joined into one image (:func:`join_block`), for a model to see a tile with its neighbours
(``inference.tile_context``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .io import FRAME_SIZE, TILE_SHAPE

#: the frame's grid of tiles: (rows, columns)
GRID = (FRAME_SIZE // TILE_SHAPE[0], FRAME_SIZE // TILE_SHAPE[1])
#: a join whose :func:`join_ratio` is above this is taken for tiles that do not meet there; a layout is used only if
#: every join it makes is at most this. The same number as :data:`.frame_shift.SEAM_FRAME_MAX` (whole frames' seams),
#: but a bound on another ratio, chosen on its own (``bench/frame_layout.py --join_max``)
JOIN_MAX = 3.0
#: what a join counts in :func:`place_tiles`' score: a join of ratio r adds r - JOIN_PRIOR, so that a layout gains
#: by each join that looks real (about 1 to 1.5 on the shared file's whole frames) and loses by each that does not.
#: 1.5 and :data:`JOIN_MAX` 3 make the fewest wrong joins of the settings measured by ``bench/frame_layout.py``
JOIN_PRIOR = 1.5
#: rows (columns) next to a join whose steps :func:`join_ratio` compares the step across it with: 8 does as well as 2
#: or 4 and better than 1 or the whole tile (``bench/frame_layout.py --near 8 1 2 4 63``)
NEAR = 8
#: frames with fewer stored tiles give no block: with 3 or fewer, a wrong layout is too likely (``bench/frame_layout.py``)
MIN_TILES = 4


def frame_runs(frame_ids) -> list[tuple[int, int]]:
    """(start, end) rows of each run of equal frame ids, ends exclusive: a frame's tiles, stored next to each other.

    Args:
        frame_ids: (N,) frame id of each stored tile.
    """
    ids = np.asarray(frame_ids)
    if not len(ids):
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return list(zip(starts.tolist(), np.r_[starts[1:], len(ids)].tolist(), strict=True))


def join_ratio(first: np.ndarray, second: np.ndarray, axis: int) -> float:
    """How much larger the gray step across the join of two tiles is than the steps next to it inside them.

    Args:
        first: (H, W) uint8 tile above (``axis`` 0) or left of (``axis`` 1) ``second``.
        second: (H, W) uint8 tile.
        axis: 0: ``second`` lies below ``first``; 1: right of it.

    Returns:
        The mean absolute step across the join over the mean step between neighbouring rows (``axis`` 0) or columns
        in the :data:`NEAR` rows (columns) of each tile next to the join (at least 0.5 gray levels): about 1 where
        the tiles were cut next to each other.
    """
    a, b = np.moveaxis(first, axis, 0).astype(np.float32), np.moveaxis(second, axis, 0).astype(np.float32)
    across = np.abs(a[-1] - b[0]).mean()
    inside = (np.abs(np.diff(a[-NEAR - 1:], axis=0)).mean() + np.abs(np.diff(b[:NEAR + 1], axis=0)).mean()) / 2
    return float(across / max(float(inside), 0.5))


def _joins(cells: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(i, j, axis) of each pair of placed tiles that meet: tile j below (axis 0) or right of (axis 1) tile i."""
    where = {c: i for i, c in enumerate(cells)}
    out = []
    for i, c in enumerate(cells):
        if c + GRID[1] in where:
            out.append((i, where[c + GRID[1]], 0))
        if (c + 1) % GRID[1] and c + 1 in where:
            out.append((i, where[c + 1], 1))
    return out


def place_tiles(tiles: np.ndarray, prior: float = JOIN_PRIOR) -> tuple[tuple[int, ...], float] | None:
    """The grid cells of a frame's stored tiles, chosen where their joins look most like one image.

    Args:
        tiles: (k, H, W) uint8, one frame's stored tiles in their stored (row-major) order, 1 <= k <= 8.
        prior: each join adds its ratio minus this to a layout's score; the lowest score wins (:data:`JOIN_PRIOR`).

    Returns:
        (cells, worst): each tile's cell (row * columns + column) and the largest :func:`join_ratio` among the joins
        that layout makes; None when no layout joins two tiles at all (a single tile). A complete frame has one
        layout, the stored one.
    """
    k = len(tiles)
    if k < 2 or k > GRID[0] * GRID[1]:
        return None
    ratio: dict[tuple[int, int, int], float] = {}
    best, best_score = None, np.inf
    for cells in itertools.combinations(range(GRID[0] * GRID[1]), k):
        joins = _joins(cells)
        if not joins:
            continue
        for key in joins:
            if key not in ratio:
                ratio[key] = join_ratio(tiles[key[0]], tiles[key[1]], key[2])
        score = sum(ratio[key] - prior for key in joins)
        if score < best_score - 1e-9:
            best, best_score = cells, score
    if best is None:
        return None
    return best, max(ratio[key] for key in _joins(best))


@dataclass(frozen=True)
class Block:
    """A rectangle of a frame's grid whose cells all hold a stored tile, joined into one image.

    Attributes:
        rows: (k,) rows of its tiles (in the array the frame ids belong to), row by row.
        cells: (k, 2) their places inside the block, as (row, column) in tile units from its top-left corner.
        shape: (rows, columns) of the block in tiles; rows * columns == k.
        owned: (k,) bool: the tiles that take their prediction from this block (each tile from one block, the
            largest around it); the others are there as context.
    """

    rows: np.ndarray
    cells: np.ndarray
    shape: tuple[int, int]
    owned: np.ndarray


def _rectangles(filled: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Every rectangle (r0, c0, r1, c1), ends exclusive, of more than one cell whose cells are all ``filled``
    ((rows, columns) bool), largest first."""
    (h, w), out = filled.shape, []
    for r0, r1 in itertools.combinations(range(h + 1), 2):
        for c0, c1 in itertools.combinations(range(w + 1), 2):
            if (r1 - r0) * (c1 - c0) > 1 and filled[r0:r1, c0:c1].all():
                out.append((r0, c0, r1, c1))
    return sorted(out, key=lambda r: -(r[2] - r[0]) * (r[3] - r[1]))


def _blocks_of_frame(rows: np.ndarray, cells: tuple[int, ...]) -> list[Block]:
    """A placed frame as hole-free blocks: each tile owned by the largest one around it; a tile no rectangle of
    two or more cells holds gets none (it is predicted alone)."""
    at = {divmod(c, GRID[1]): row for c, row in zip(cells, rows, strict=True)}
    filled = np.zeros(GRID, bool)
    filled[tuple(np.array(list(at)).T)] = True
    owner: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    rects = _rectangles(filled)
    for cell in at:
        owner[cell] = next((r for r in rects if r[0] <= cell[0] < r[2] and r[1] <= cell[1] < r[3]), None)
    blocks = []
    for rect in dict.fromkeys(r for r in owner.values() if r is not None):
        r0, c0, r1, c1 = rect
        inside = [(r, c) for r in range(r0, r1) for c in range(c0, c1)]
        blocks.append(Block(np.array([at[x] for x in inside]), np.array([(r - r0, c - c0) for r, c in inside]),
                            (r1 - r0, c1 - c0), np.array([owner[x] == rect for x in inside])))
    return blocks


def frame_blocks(images: np.ndarray, frame_ids) -> list[Block]:
    """The frames of ``images`` whose tiles can be put together, as hole-free :class:`Block` s.

    A complete frame is one block. A frame that lost tiles is placed by :func:`place_tiles` and cut into the
    largest rectangles its tiles fill (a lost cell is never filled in: gray filler measured worse than the tile
    alone, ``bench/tta.py``'s frame modes, docs/results.md). A frame's tiles must be stored next to each other (the
    shared file's layout). Frames of fewer than :data:`MIN_TILES` tiles, frames whose best layout makes a join
    above :data:`JOIN_MAX`, and tiles of another shape than the file's give no block.

    Args:
        images: (N, H, W) uint8 tiles.
        frame_ids: (N,) frame id of each tile, or None (no frame is known: no blocks).
    """
    if frame_ids is None or images.shape[1:] != TILE_SHAPE or not len(images):
        return []
    blocks = []
    for s, e in frame_runs(frame_ids):
        placed = place_tiles(images[s:e]) if MIN_TILES <= e - s <= GRID[0] * GRID[1] else None
        if placed is not None and placed[1] <= JOIN_MAX:
            blocks += _blocks_of_frame(np.arange(s, e), placed[0])
    return blocks


def join_block(images: np.ndarray, block: Block) -> np.ndarray:
    """(H * rows, W * columns) uint8 image of a block's tiles in their places."""
    th, tw = images.shape[1:]
    out = np.empty((block.shape[0] * th, block.shape[1] * tw), np.uint8)
    for row, (r, c) in zip(block.rows, block.cells, strict=True):
        out[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = images[row]
    return out

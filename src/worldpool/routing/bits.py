"""Sets of names as bitmask columns, so "required ⊆ advertised" is one numpy expression.

A :class:`BitVocab` gives every distinct name (capability, tool, served model, handler,
label) a bit. A row's set becomes ``words`` unsigned 64-bit integers, so any number of
distinct names works: 64 names fit one word, 65 need two, and so on.

It is also an inverted index: :meth:`BitVocab.rows_with` gives the (sorted) rows holding
a name, computed once per name and kept with the vocabulary, so the router can start a
decision from the workers that run the task's handler instead of the whole pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]  # one flag per worker row of the pool snapshot
Rows = npt.NDArray[np.intp]  # row numbers of the pool snapshot


BitMatrix = npt.NDArray[np.uint64]
_WORD = 64
_WORD_MASK = (1 << _WORD) - 1


class BitVocab:
    """A name → bit mapping built from the rows it encodes."""

    def __init__(self, rows: Sequence[Iterable[str]], bits: dict[str, int] | None = None) -> None:
        self.bits: dict[str, int] = dict(bits or {})
        ints: list[int] = []
        for names in rows:
            value = 0
            for name in names:
                bit = self.bits.setdefault(name, len(self.bits))
                value |= 1 << bit
            ints.append(value)
        self._rows_with: dict[str, Rows] = {}
        self.words = max(1, -(-len(self.bits) // _WORD))
        self.matrix: BitMatrix = np.zeros((len(ints), self.words), dtype=np.uint64)
        for row, value in enumerate(ints):
            if value:
                self.matrix[row] = self._split(value)

    def extended(self, rows: Sequence[Iterable[str]]) -> BitVocab:
        """A vocabulary with ``rows`` appended: the same as building it from all rows."""
        more = BitVocab(rows, self.bits)
        old = self.matrix
        if more.words > self.words:  # new names needed another word
            widen = np.zeros((len(old), more.words - self.words), dtype=np.uint64)
            old = np.hstack([old, widen])
        more.matrix = np.vstack([old, more.matrix])
        return more

    def edited(self, removed: Rows, replaced: Sequence[tuple[int, Iterable[str]]]) -> BitVocab:
        """A vocabulary with the rows ``removed`` deleted (the others keep their order)
        and, before that, each ``(row, names)`` of ``replaced`` set to ``names``: the
        same rows as building it from the edited list of rows. Names no row holds any
        more keep their bit (they match no row); new names get new bits."""
        more = BitVocab([names for _, names in replaced], self.bits)
        matrix = self.matrix
        if more.words > self.words:  # new names needed another word
            widen = np.zeros((len(matrix), more.words - self.words), dtype=np.uint64)
            matrix = np.hstack([matrix, widen])
        elif replaced:
            matrix = matrix.copy()  # shared with the vocabulary this one replaces
        for i, (row, _) in enumerate(replaced):
            matrix[row] = more.matrix[i]
        more.matrix = np.delete(matrix, removed, axis=0) if len(removed) else matrix
        return more

    def _split(self, value: int) -> BitMatrix:
        return np.array(
            [(value >> (_WORD * w)) & _WORD_MASK for w in range(self.words)], dtype=np.uint64
        )

    def query(self, names: Iterable[str]) -> BitMatrix | None:
        """The bitmask of ``names``; None if any name is held by no row at all."""
        value = 0
        for name in names:
            bit = self.bits.get(name)
            if bit is None:
                return None
            value |= 1 << bit
        return self._split(value)

    def has_all(self, names: Iterable[str], rows: Rows | None = None) -> Mask:
        """Rows whose set contains every name in ``names``: one flag per row of the pool,
        or, given ``rows``, one flag per listed row (only those rows are looked at)."""
        wanted = self.query(names)
        if wanted is None:
            return np.zeros(len(self.matrix) if rows is None else len(rows), dtype=np.bool_)
        if self.words == 1:
            column = self.matrix[:, 0] if rows is None else self.matrix[rows, 0]
            return np.asarray((column & wanted[0]) == wanted[0], dtype=np.bool_)
        matrix = self.matrix if rows is None else self.matrix[rows]
        return np.asarray(np.all((matrix & wanted) == wanted, axis=1), dtype=np.bool_)

    def rows_with(self, name: str) -> Rows:
        """The rows (ascending) whose set holds ``name``, computed once per name.

        The arrays are shared and read-only."""
        found = self._rows_with.get(name)
        if found is None:
            bit = self.bits.get(name)
            if bit is None:
                found = np.empty(0, dtype=np.intp)
            else:
                word = self.matrix[:, bit // _WORD]
                flag = np.uint64(1 << (bit % _WORD))
                found = np.flatnonzero(word & flag).astype(np.intp, copy=False)
            found.flags.writeable = False
            self._rows_with[name] = found
        return found

"""Sets of names as bitmask columns, so "required ⊆ advertised" is one numpy expression.

A :class:`BitVocab` gives every distinct name (capability, tool, served model, handler,
label) a bit. A row's set becomes ``words`` unsigned 64-bit integers, so any number of
distinct names works: 64 names fit one word, 65 need two, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]  # one flag per worker row of the pool snapshot


BitMatrix = npt.NDArray[np.uint64]
_WORD = 64
_WORD_MASK = (1 << _WORD) - 1


class BitVocab:
    """A name → bit mapping built from the rows it encodes."""

    def __init__(self, rows: Sequence[Iterable[str]]) -> None:
        self.bits: dict[str, int] = {}
        ints: list[int] = []
        for names in rows:
            value = 0
            for name in names:
                bit = self.bits.setdefault(name, len(self.bits))
                value |= 1 << bit
            ints.append(value)
        self.words = max(1, -(-len(self.bits) // _WORD))
        self.matrix: BitMatrix = np.zeros((len(ints), self.words), dtype=np.uint64)
        for row, value in enumerate(ints):
            if value:
                self.matrix[row] = self._split(value)

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

    def has_all(self, names: Iterable[str]) -> Mask:
        """Rows whose set contains every name in ``names``."""
        wanted = self.query(names)
        if wanted is None:
            return np.zeros(len(self.matrix), dtype=np.bool_)
        if self.words == 1:
            column = self.matrix[:, 0]
            return np.asarray((column & wanted[0]) == wanted[0], dtype=np.bool_)
        return np.asarray(np.all((self.matrix & wanted) == wanted, axis=1), dtype=np.bool_)

"""How every CLI command prints data: a table or JSON, readable in any terminal and in a pipe.

* :func:`emit_table` - in a terminal, a rich table whose cells *fold* at its width (never
  cut with an ellipsis) and whose first column (the ids) is never broken, or, where even
  the headers do not fit, one block per row (the id, then ``column  value`` lines,
  wrapped between words); anywhere else
  (a pipe, a file, CI logs), plain aligned text: the title line, a header row and one line per row, columns
  separated by two spaces, no box drawing, no wrapping, so ``grep`` and ``awk`` see whole
  ids on whole lines.
* :func:`emit_json` - one JSON document (indented), written as bytes-for-bytes text, never
  re-wrapped or highlighted by rich; ``--json`` on every command that prints data uses it.

Both write to a rich console (the app's stdout console unless given), so tests can pass a
console with a fixed width and ``force_terminal``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import typer
from rich.console import Console

from worldpool.render import FitTable, plain_table

Cell = str | int | float | None
__all__ = ["emit_json", "emit_table", "plain_table"]


def emit_json(obj: Any, *, console: Console | None = None) -> None:
    """Print ``obj`` as one indented JSON document (pydantic models and lists of them too)."""
    out = _console(console)
    data = orjson.dumps(obj, default=_model_json, option=orjson.OPT_INDENT_2)
    with _reader_may_leave():
        out.file.write(data.decode() + "\n")
        out.file.flush()


@contextmanager
def _reader_may_leave() -> Iterator[None]:
    """``worldpool list --json | head``: the reader left, nothing failed. Exit 0 quietly,
    whichever command was printing (not click's exit 1, nor a traceback)."""
    try:
        yield
    except BrokenPipeError:
        from worldpool.cli.app import Exit, silence_stdout

        silence_stdout()
        raise typer.Exit(int(Exit.OK)) from None


def emit_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    json_mode: bool = False,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print ``rows`` under ``columns``: JSON (a list of objects keyed by column) when
    ``json_mode``, a folding table in a terminal, plain aligned text elsewhere."""
    cells = [[_text(c) for c in row] for row in rows]
    if json_mode:
        emit_json([dict(zip(columns, row, strict=True)) for row in cells], console=console)
        return
    with _reader_may_leave():
        _emit_text(_console(console), columns, cells, title)


def _emit_text(
    out: Console, columns: Sequence[str], cells: list[list[str]], title: str | None
) -> None:
    if not out.is_terminal:
        out.file.write((f"{title}\n" if title else "") + plain_table(columns, cells))
        out.file.flush()
        return
    out.print(FitTable(columns, cells, title), markup=False, highlight=False)


def _console(console: Console | None) -> Console:
    if console is not None:
        return console
    from worldpool.cli.app import console as app_console

    return app_console


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def _model_json(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise TypeError(f"cannot print {type(obj).__name__} as JSON")
    return dump(mode="json")

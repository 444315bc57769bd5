"""A progress bar for long commands, drawn with rich (the ``cli`` extra) at a terminal only."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TextIO


class Progress:
    """Rows done and, when the source's ``total`` size is known, a bar of how far it is read.

    Without a terminal on ``stream``, or without rich installed, it shows nothing (the command's
    summary still says what happened).
    """

    def __init__(self, stream: TextIO, label: str, total: int | None) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._bar: Any = None
        self._task: Any = None
        self._completed = 0
        self.rows = 0

    def __enter__(self) -> Progress:
        if not _is_terminal(self._stream):
            return self
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:
            return self
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=self._total, rows=0)
        return self

    def advance(self, rows: int, position: int) -> None:
        """``rows`` more are done, and the source has been read up to ``position``."""
        self.rows += rows
        self._completed = max(self._completed, position)
        if self._bar is not None:
            self._bar.update(self._task, completed=self._completed, rows=self.rows)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is None:
            return
        if exc_type is None and self._total is not None:
            self._bar.update(self._task, completed=self._total, rows=self.rows)
        self._bar.stop()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

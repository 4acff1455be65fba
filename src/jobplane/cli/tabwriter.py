"""Go's ``text/tabwriter`` (space padding, left aligned), which kubectl uses for both
``get`` (minwidth 6, padding 3) and ``describe`` (minwidth 0, padding 2).

Cells are tab-terminated; the text after a line's last tab is not part of any
column. A column is aligned over a *block* of consecutive lines that all have a
cell in it, so a line without tabs starts new alignment, exactly as in Go.
"""

from __future__ import annotations


class TabWriter:
    def __init__(self, *, minwidth: int = 0, padding: int = 1, remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self._remembered: list[int] = []
        self._text: list[str] = []

    def write(self, text: str) -> None:
        self._text.append(text)

    def flush(self) -> str:
        """Format what was written since the last flush and return it."""
        text = "".join(self._text)
        self._text = []
        if not text:
            return ""
        trailing_newline = text.endswith("\n")
        raw_lines = text[:-1].split("\n") if trailing_newline else text.split("\n")
        lines = [line.split("\t") for line in raw_lines]
        out: list[str] = []
        self._format(lines, 0, len(lines), [], out)
        result = "\n".join(out)
        return result + "\n" if trailing_newline else result

    def _format(self, lines: list[list[str]], line0: int, line1: int, widths: list[int],
                out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write_lines(lines, line0, this, widths, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                w = len(lines[this][column]) + self.padding
                width = max(width, w)
                this += 1
            if self.remember_widths:
                if column < len(self._remembered):
                    width = max(width, self._remembered[column])
                    self._remembered[column] = width
                else:
                    self._remembered.append(width)
            self._format(lines, line0, this, widths + [width], out)
            line0 = this
        self._write_lines(lines, line0, line1, widths, out)

    @staticmethod
    def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int],
                     out: list[str]) -> None:
        for i in range(line0, line1):
            parts = []
            for j, cell in enumerate(lines[i]):
                if j < len(widths):
                    parts.append(cell + " " * (widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))


def tabify(text: str, *, minwidth: int = 0, padding: int = 1) -> str:
    """One-shot formatting."""
    w = TabWriter(minwidth=minwidth, padding=padding)
    w.write(text)
    return w.flush()

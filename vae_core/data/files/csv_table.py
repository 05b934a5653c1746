"""A CSV of pixel rows (an optional header, an optional 'label' or 'y' column), streamed row by row.

No row makes a list of more than max_image_pixels + 1 fields, no field is longer than
max_csv_field characters, and the rows' float32 total is checked against max_data_mb as they
accumulate. Unquoted rows are parsed in bulk by numpy's C reader; a row that fails any check is
parsed again alone, so the message names the first bad row and column.
"""
from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ...limits import ENV, limits
from ..errors import DataError, _check, _check_bytes
from .validate import Loaded, class_labels, open_regular, short, validate_array

_LABEL_COLUMNS = ("label", "y")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class _CsvRows:
    """A CSV's records, streamed: (line number, record) with blank lines skipped.

    A line without a quote stays one string (parsed later, in bulk); a line with one goes through
    the csv module, which may take more lines for a quoted newline. No line is split before its
    separators are counted, so no row makes a list of more than max_image_pixels + 1 fields. The
    csv module's field_size_limit is process-global, so it is left alone: field lengths are
    checked here against max_csv_field, and the module's own (larger) limit reads the same.
    """

    def __init__(self, fh, name: str) -> None:
        self.name = name
        self.max_values = limits().max_image_pixels + 1  # pixels and one label
        self.lineno = 0
        self._lines = self._checked(fh)

    def _checked(self, fh) -> Iterator[str]:
        for line in fh:
            self.lineno += 1
            # A line splits into at most len + 1 fields, so only a long one needs its separators counted.
            if len(line) >= self.max_values and (values := line.count(",") + 1) > self.max_values:
                raise DataError(
                    f"{self.name}: line {self.lineno} has {values:,} values, more than one label and the limit of "
                    f"{self.max_values - 1:,} pixels; set the environment variable {ENV['max_image_pixels']} "
                    "to raise it"
                )
            yield line

    def __iter__(self) -> Iterator[tuple[int, str | list[str]]]:
        for line in self._lines:
            start = self.lineno
            if not line.strip():
                continue  # blank lines are skipped, as pandas does
            if '"' not in line:
                yield start, line
                continue
            try:
                record = next(csv.reader(itertools.chain([line], self._lines)))
            except csv.Error as e:
                if "field limit" in str(e):
                    raise DataError(
                        f"{self.name}: a value on line {start} is over {csv.field_size_limit():,} characters, more "
                        f"than the limit of {limits().max_csv_field:,} characters; set the environment variable "
                        f"{ENV['max_csv_field']} to raise it"
                    ) from None
                raise DataError(f"{self.name}: line {start} is not valid CSV ({short(e)}); "
                                "save the file again as plain CSV") from None
            except StopIteration:
                continue
            yield start, record


def _split(record: str | list[str]) -> list[str]:
    return record if isinstance(record, list) else record.rstrip("\r\n").split(",")


def _count(record: str | list[str]) -> int:
    return len(record) if isinstance(record, list) else record.count(",") + 1


def _longest_field(lines: list[str]) -> int:
    """An upper bound on the longest field of unquoted lines, in bytes (UTF-8), without splitting them."""
    b = np.frombuffer("".join(lines).encode("utf-8"), dtype=np.uint8)
    seps = np.flatnonzero((b == ord(",")) | (b == ord("\n")))  # a "\r" counts in: still an upper bound
    return int(np.diff(np.concatenate(([-1], seps, [len(b)]))).max()) - 1


def _check_field_lengths(name: str, fields: list[str], max_field: int, place: Callable[[int], str]) -> None:
    """DataError for the first field over max_field characters; place(j) says where field j stands."""
    for j, f in enumerate(fields):
        if len(f) > max_field:
            raise DataError(
                f"{name}: the value {place(j)} is {len(f):,} characters, over the limit of {max_field:,} "
                f"characters; set the environment variable {ENV['max_csv_field']} to raise it"
            )


class _CsvTable:
    """Data rows of a K-column CSV to float32 blocks and label strings, every row checked."""

    def __init__(self, name: str, k: int, label: int | None, has_header: bool) -> None:
        lim = limits()
        self.name, self.k, self.label, self.has_header = name, k, label, has_header
        self.p = k - (label is not None)  # pixel values per row
        if self.p < 1:
            raise DataError(f"{name}: the only column is the label; the file needs columns of pixel values too")
        _check(f"{name}: each row's image ({self.p:,} values)", self.p, "max_image_pixels", unit="pixels")
        self.max_field = lim.max_csv_field
        self.max_rows = lim.max_data_mb * 2**20 // (self.p * 4)
        self.cols = None if label is None else [j for j in range(k) if j != label]
        self.rows = 0  # data rows so far
        self.blocks: list[np.ndarray] = []
        self.labels: list[str] = []
        self.chunk = max(1, min(1024, 2**24 // (self.p * 4)))  # rows parsed at once: at most 16 MB of float32

    def _where(self, ln: int) -> str:
        return (f"data rows counted from 1 below the header: line {ln} of the file" if self.has_header
                else f"line {ln} of the file; there is no header row")

    def add(self, batch: list[tuple[int, str | list[str]]]) -> None:
        """Check and convert a batch of (line number, record) data rows."""
        first = self.rows + 1
        if self.rows + len(batch) > self.max_rows:
            _check_bytes(f"{self.name}: the rows read so far ({self.rows + len(batch):,} of {self.p:,} values) "
                         "as float32", (self.rows + len(batch)) * self.p * 4, "max_data_mb")
        if all(isinstance(rec, str) for _, rec in batch) and self._fast([rec for _, rec in batch]):
            self.rows += len(batch)
            return
        for i, (ln, rec) in enumerate(batch):  # the exact check, row by row, names the first bad one
            self._row(first + i, ln, rec)
        self.rows += len(batch)

    def _fast(self, lines: list[str]) -> bool:
        """Bulk parse (numpy's C reader) of unquoted lines that pass every check; False to go row by row."""
        if any(line.count(",") != self.k - 1 for line in lines):
            return False
        if max(map(len, lines)) > self.max_field and _longest_field(lines) > self.max_field:
            return False
        try:
            block = np.loadtxt(lines, delimiter=",", dtype=np.float32, comments=None, usecols=self.cols, ndmin=2)
        except ValueError:
            return False
        if block.shape != (len(lines), self.p):
            return False
        if self.label is not None:
            if self.label == 0:
                labels = [line.split(",", 1)[0] for line in lines]
            elif self.label == self.k - 1:
                labels = [line.rstrip("\r\n").rsplit(",", 1)[1] for line in lines]
            else:
                labels = [line.split(",")[self.label] for line in lines]
            self.labels.extend(s.strip() for s in labels)
        self.blocks.append(block)
        return True

    def _row(self, r: int, ln: int, rec: str | list[str]) -> None:
        n = _count(rec)
        if n != self.k:
            raise DataError(f"{self.name}: row {r} has {n} values, expected {self.k} ({self._where(ln)})")
        fields = _split(rec)
        _check_field_lengths(self.name, fields, self.max_field,
                             lambda j: f"in row {r}, column {j + 1} ({self._where(ln)})")
        pixels = fields if self.label is None else fields[:self.label] + fields[self.label + 1:]
        try:
            values = np.asarray(pixels, dtype=np.float32)
        except ValueError:
            j = next(j for j, f in enumerate(fields) if j != self.label and not _is_number(f))
            shown = fields[j] if len(fields[j]) <= 40 else fields[j][:37] + "..."
            raise DataError(
                f"{self.name}: row {r}, column {j + 1}: {shown!r} is not a number ({self._where(ln)}); "
                "only the header row and a 'label' or 'y' column may hold non-numeric text"
            ) from None
        if self.label is not None:
            self.labels.append(fields[self.label].strip())
        self.blocks.append(values[None])

    def array(self) -> np.ndarray:
        out = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        self.blocks = []
        return out


def load_csv(path: Path, max_bytes: int | None) -> Loaded:
    name = path.name
    # utf-8-sig: a byte-order mark (Excel) is dropped
    with open_regular(path, name, "r", encoding="utf-8-sig", newline="") as fh:
        rows = iter(_CsvRows(fh, name))
        first = next(rows, None)
        if first is None:
            raise DataError(f"{name}: the file is empty; it needs at least one row of pixel values")
        ln, rec = first
        head = _split(rec)
        _check_field_lengths(name, head, limits().max_csv_field, lambda j: f"on line {ln}, column {j + 1}")
        has_header = not all(_is_number(c) for c in head)
        label = None
        if has_header:
            label = next((j for j, c in enumerate(head) if c.strip().lower() in _LABEL_COLUMNS), None)
        table = _CsvTable(name, len(head), label, has_header)
        if not has_header:
            table.add([first])
        while batch := list(itertools.islice(rows, table.chunk)):
            table.add(batch)
    if table.rows == 0:
        raise DataError(f"{name}: the file is empty apart from its header; it needs at least one row of pixel values")
    x = validate_array(table.array(), name)
    if label is None:
        return x, None, {}
    try:
        y = np.asarray(table.labels, dtype=np.float64)  # numbers stay numbers, as pandas would read them
    except ValueError:
        y = np.asarray(table.labels, dtype=str)
    return (x, *class_labels(y, len(x), f"{name} column '{head[label].strip()}'"))

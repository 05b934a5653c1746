"""The library's own error for unloadable models and runs, and one sentence for any exception.

`sentence` gives the CLI's stderr and the app's error boxes one line (never a traceback). The
other errors live with what they guard and are ValueErrors too: `vae_core.data.DataError`
(a data set that cannot be read) and `vae_core.limits.LimitError` (a size over a limit).
"""
from __future__ import annotations

import csv
import zipfile


class CheckpointError(ValueError):
    """A model file or run directory that cannot be loaded; the message says what to do."""


def sentence(e: BaseException) -> str:
    """The first line of an exception's message, with what it means where the message alone says little."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, MemoryError):
        return "out of memory; use fewer or smaller images, or a smaller model"
    if isinstance(e, RecursionError):
        return "the input is nested too deeply to read (maximum recursion depth exceeded); it is not a valid file"
    if isinstance(e, OSError) and e.strerror:  # 'No space left on device: runs/x', not '[Errno 28] ...'
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    if isinstance(e, (zipfile.BadZipFile, csv.Error)):
        return f"the file is corrupt or not in the expected format ({first or type(e).__name__})"
    if not first:
        return type(e).__name__
    # Our own errors (ValueError: DataError, CheckpointError, LimitError) and OSErrors we raise are sentences.
    return first if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {first}"

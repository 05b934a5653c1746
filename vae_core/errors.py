"""One sentence for any exception, for the CLI's stderr and the app's error boxes (never a traceback)."""
from __future__ import annotations

import csv
import zipfile


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

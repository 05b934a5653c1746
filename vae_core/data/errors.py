"""`DataError`, the one error for data that cannot be used, and the limit checks that raise it.

Every module of `vae_core.data` imports these from here (the package's `__init__` imports its
modules, so a module importing from the package would go round a loop).
"""
from __future__ import annotations

from ..limits import LimitError, check, check_bytes


class DataError(ValueError):
    """Data that cannot be used; the message names the problem and what to do."""


class DataLimitError(DataError, LimitError):
    """Data over a budget of vae_core.limits; the message names the limit and the variable that raises it."""


def _check(what: str, value: int, name: str, *, unit: str = "") -> None:
    """vae_core.limits.check, raising DataLimitError (a DataError) when value is over the limit `name`."""
    try:
        check(what, value, name, unit=unit)
    except LimitError as e:
        raise DataLimitError(str(e)) from None


def _check_bytes(what: str, nbytes: int, name: str) -> None:
    """vae_core.limits.check_bytes, raising DataLimitError (a DataError)."""
    try:
        check_bytes(what, nbytes, name)
    except LimitError as e:
        raise DataLimitError(str(e)) from None

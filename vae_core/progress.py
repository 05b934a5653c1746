"""One progress protocol for the library's long jobs: `fit`, `Projection.fit` and `diagnose`.

In openTSNE's spirit: a job takes `progress=`, a callable it calls with a `Progress` event as it
goes; the callback returns True to stop the job (None or False: go on). What stopping means is
each job's to say (its docstring): `fit` returns what it has with stopped_reason "cancelled...",
`Projection.fit` keeps its t-SNE layout as it is, `diagnose` raises `DiagnoseCancelled`.

A consumer needs only the event: the CLI's tqdm bars, its JSON-lines writer and the app's
progress bars all read the same fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional


@dataclass(frozen=True)
class Progress:
    """One progress event: what the job is doing, how far it is, and what that step has to say.

    what: the phase or part ("step" and "epoch" in `fit`; "early_exaggeration", "embedding",
        "transform", "umap_graph", "umap_epochs"
        or "pca" in `Projection.fit`; a part of the report in `diagnose`).
    done, total: how far within `what`, in its own units (steps, epochs, iterations, points placed;
        `diagnose` gives the fraction of its part done out of 1).
    fraction: how far the whole job is, in [0, 1]; within one job it never goes back, and it is 1
        at the last event of a job that ran to its end.
    info: what the job reports beside: `fit`'s step losses or epoch row, t-SNE's KL divergence.
    """

    what: str
    done: float
    total: float
    fraction: float
    info: Mapping[str, Any] = field(default_factory=dict, hash=False)


ProgressFn = Callable[[Progress], Optional[bool]]


def report(progress: ProgressFn | None, event: Progress) -> bool:
    """Call `progress` (when there is one) with `event`; True when it asks the job to stop."""
    return progress is not None and bool(progress(event))


def fan_out(*callbacks: ProgressFn | None) -> ProgressFn | None:
    """One callback that passes every event to each of `callbacks` (Nones skipped) and asks to
    stop when any of them does; None when there are none."""
    live = [cb for cb in callbacks if cb is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]

    def each(event: Progress) -> bool:
        stops = [bool(cb(event)) for cb in live]  # a list, not any(): every consumer sees every event
        return any(stops)

    return each


class Spans:
    """Maps (part, fraction of that part) to the fraction of the whole job.

    Parts run in the order of `weights` (a dict), from `start` to 1, each taking a share of the
    span proportional to its weight (predicted seconds, iterations: any unit); a part not named has
    no share, and fractions are clipped to [0, 1].
    """

    def __init__(self, weights: Mapping[str, float], start: float = 0.0):
        w = {part: max(float(v), 0.0) for part, v in weights.items()}
        total = sum(w.values()) or 1.0
        self.span: dict[str, tuple[float, float]] = {}
        at = start
        for part, v in w.items():
            share = (1.0 - start) * v / total
            self.span[part] = (at, share)
            at += share

    def __call__(self, part: str, frac: float) -> float:
        lo, share = self.span.get(part, (0.0, 0.0))
        if frac >= 1.0 and part in self.span and part == next(reversed(self.span)):
            return 1.0  # the last part's end is the job's end, whatever the shares' rounding
        return min(1.0, lo + share * min(max(frac, 0.0), 1.0))

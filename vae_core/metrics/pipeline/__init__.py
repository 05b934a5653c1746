"""The diagnose pipeline: which points, the time budget, running the metrics in order, the report.

The metrics themselves (pure functions of a model's codes or of arrays) live one level up, in
`vae_core.metrics`; this package plans and runs them. `options` declares every diagnose option once
(the CLI's `diagnose` options and the app's Diagnose, Blurriness and Compare controls are built from
it); `heldout` picks the evaluation points; `budget` times the model and chooses k and the points;
`blur_chunks` accumulates the blur statistics; `scoring` turns per-point bounds into the stated
figures; `report` runs it all (`diagnose`); `report_card` is the `Report` (its JSON dict, table and
summary).
"""
from .options import DiagnoseOptions
from .report import DiagnoseCancelled, Report, diagnose

__all__ = ["DiagnoseCancelled", "DiagnoseOptions", "Report", "diagnose"]

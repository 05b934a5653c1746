"""Diagnostics of a VAE: one module per metric (disentanglement_lib layout), the diagnose pipeline apart.

Each public function takes (model, data); its core (`collapse_stats`, `mutual_info_core`, ...) takes
plain arrays. The pipeline (`vae_core.metrics.pipeline`: options, held-out points, time budget,
running, the report) runs the cores on one encoding of the evaluation split and returns a `Report`
(docs/contracts.md, "Diagnose report keys").
"""
from .aggregate import AggregateStats, aggregate_posterior
from .blur import (BlurStats, blurriness, laplacian_sharpness, laplacian_variance, pixel_variance,
                   radial_spectrum)
from .collapse import CollapseStats, posterior_collapse
from .iwae import Bounds, log_likelihood_bounds
from .mig import MIGResult, mig
from .mutual_info import MutualInfo, mutual_information
from .pipeline import DiagnoseCancelled, DiagnoseOptions, Report, diagnose

__all__ = [
    "AggregateStats", "BlurStats", "Bounds", "CollapseStats", "DiagnoseCancelled", "DiagnoseOptions", "MIGResult",
    "MutualInfo", "Report", "aggregate_posterior", "blurriness", "diagnose", "laplacian_sharpness",
    "laplacian_variance", "log_likelihood_bounds", "mig", "mutual_information", "pixel_variance",
    "posterior_collapse", "radial_spectrum",
]

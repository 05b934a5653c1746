"""The one progress protocol (vae_core.progress): fit, Projection and diagnose send `Progress` events
whose fraction rises to 1, and each stops where its callback returns True."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core import VAE, ModelConfig, TrainConfig
from vae_core.data import Dataset
from vae_core.metrics import DiagnoseCancelled, diagnose
from vae_core.progress import Progress, Spans, fan_out
from vae_core.maps.projection import Projection
from vae_core.train import fit

SHAPE = (1, 8, 8)


def _rising_to_one(events: list[Progress]) -> bool:
    fracs = [e.fraction for e in events]
    return all(0.0 <= a <= b <= 1.0 for a, b in zip(fracs, fracs[1:])) and fracs[-1] == 1.0


# ------------------------------------------------------------------------------------ the helpers
def test_spans_share_the_job_in_order_by_weight():
    where = Spans({"a": 1.0, "b": 3.0}, start=0.2)  # a: 0.2 to 0.4, b: 0.4 to 1.0
    assert where("a", 0.0) == pytest.approx(0.2) and where("a", 1.0) == pytest.approx(0.4)
    assert where("b", 0.5) == pytest.approx(0.7) and where("b", 1.0) == pytest.approx(1.0)
    assert where("b", 7.0) == pytest.approx(1.0) and where("a", -1.0) == pytest.approx(0.2)  # clipped
    assert where("unnamed", 0.5) == 0.0


def test_fan_out_shows_every_event_to_every_consumer_and_stops_when_any_asks():
    seen: list[tuple[str, str]] = []
    first = lambda e: seen.append(("first", e.what)) or e.what == "b"  # noqa: E731
    second = lambda e: seen.append(("second", e.what))  # noqa: E731
    both = fan_out(first, None, second)
    assert both(Progress("a", 0, 1, 0.0)) is False
    assert both(Progress("b", 1, 1, 1.0)) is True
    assert seen == [("first", "a"), ("second", "a"), ("first", "b"), ("second", "b")]
    assert fan_out(None, None) is None and fan_out(second) is second


# ------------------------------------------------------------------------------------------- fit
@pytest.fixture(scope="module")
def toy() -> tuple[Dataset, Dataset]:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, *SHAPE, generator=g) > 0.5).float()
    return Dataset(x=x[:32], name="toy"), Dataset(x=x[32:], name="toy")


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=SHAPE, latent_dim=2, hidden=(16,)))


def test_fit_reports_every_step_and_epoch_rising_to_one(toy):
    events: list[Progress] = []
    h = fit(_vae(), *toy, TrainConfig(epochs=3, batch_size=10, seed=0), progress=events.append)
    assert h.completed
    steps = [e for e in events if e.what == "step"]
    epochs = [e for e in events if e.what == "epoch"]
    # 32 points in batches of 10: 4 steps per epoch, 12 in all
    assert [e.done for e in steps] == list(range(1, 13)) and {e.total for e in steps} == {12}
    assert [e.fraction for e in steps] == [s / 12 for s in range(1, 13)]
    assert [(e.done, e.total, e.fraction) for e in epochs] == [(1, 3, 1 / 3), (2, 3, 2 / 3), (3, 3, 1.0)]
    assert [e.what for e in events[:5]] == ["step"] * 4 + ["epoch"]
    assert set(steps[0].info) == {"epoch", "step", "total_steps", "loss", "kl", "beta"}
    assert [e.info for e in epochs] == h.rows  # the history rows, kl_dim_j included
    assert _rising_to_one(events)


def test_fit_stops_after_exactly_the_step_that_returned_true(toy):
    events: list[Progress] = []
    model = _vae()
    h = fit(model, *toy, TrainConfig(epochs=3, batch_size=10, seed=0),
            progress=lambda e: events.append(e) or (e.what == "step" and e.done == 6))
    assert [(e.what, e.done) for e in events] == [("step", 1), ("step", 2), ("step", 3), ("step", 4), ("epoch", 1),
                                                  ("step", 5), ("step", 6)]
    assert len(h.rows) == 1 and not h.completed and h.stopped_reason.startswith("cancelled during epoch 2")
    # the weights of the last finished epoch: what one epoch alone trains
    one = _vae()
    fit(one, *toy, TrainConfig(epochs=1, batch_size=10, seed=0))
    for (k, a), b in zip(model.state_dict().items(), one.state_dict().values()):
        assert torch.equal(a, b), k


# ------------------------------------------------------------------------------------ Projection
@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([c + rng.normal(size=(40, 5)) for c in (0.0, 10.0, 20.0)])  # (120, 5)


def test_projection_fractions_rise_to_one_through_every_phase(codes):
    events: list[Progress] = []
    Projection("pca", progress=events.append).fit(codes)
    assert [(e.what, e.fraction) for e in events] == [("pca", 1.0)]
    events.clear()
    p = Projection("tsne", perplexity=10.0, n_iter=50, max_fit_points=100, progress=events.append).fit(codes)
    assert [e.what for e in events] == ["early_exaggeration"] * 10 + ["embedding"] * 2 + ["transform"]
    assert (events[-1].done, events[-1].total) == (20, 20) and not p.stopped_early_  # 120 - 100 placed
    assert _rising_to_one(events)


def test_projection_stops_the_tsne_where_the_callback_returns_true(codes):
    events: list[Progress] = []
    p = Projection("tsne", perplexity=10.0, n_iter=100,
                   progress=lambda e: events.append(e) or e.what == "embedding").fit(codes)
    assert [(e.what, e.done) for e in events][-2:] == [("early_exaggeration", 250), ("embedding", 25)]
    assert p.stopped_early_ and np.isfinite(p.embedding_).all()


# -------------------------------------------------------------------------------------- diagnose
def test_diagnose_fractions_rise_to_one_and_a_true_cancels_there():
    model = _vae().eval()
    data = Dataset(x=(torch.rand(60, *SHAPE, generator=torch.Generator().manual_seed(1)) > 0.5).float(), name="toy")
    events: list[Progress] = []
    diagnose(model, data, n_points=None, iwae_k=3, progress=events.append)
    parts = [e.what for i, e in enumerate(events) if i == 0 or e.what != events[i - 1].what]
    assert parts == ["encode", "collapse", "mutual_info", "aggregate", "iwae", "blur", "done"]
    assert all(0.0 <= e.done <= e.total == 1.0 for e in events)
    assert _rising_to_one(events)

    stop_at = next(i for i, e in enumerate(events) if e.what == "collapse")
    seen: list[Progress] = []
    with pytest.raises(DiagnoseCancelled, match="collapse"):
        diagnose(model, data, n_points=None, iwae_k=3, progress=lambda e: seen.append(e) or len(seen) > stop_at)
    assert [e.what for e in seen] == [e.what for e in events[:stop_at + 1]]


def test_spans_end_at_exactly_one_whatever_the_rounding():
    # shares of 25000, 5000 and 1000 sum to 0.9999999999999999 in floating point
    where = Spans({"a": 25_000, "b": 5_000, "c": 1_000})
    assert where("c", 1.0) == 1.0 and where("b", 1.0) < 1.0

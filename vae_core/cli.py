"""The command line: train a VAE into a run directory; diagnose a run or a user's model file
(TorchScript, or a zip of torch.export or ONNX programs).

Errors are one line on stderr and exit code 2, never a traceback. Progress and logs go to
stderr, so `diagnose --json` prints exactly one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import devices, distributed
from .config import (ModelConfig, TrainConfig, cli_flag, configs_from_options, ints_text, is_option, option_fields,
                     parse_ints)
from .progress import Progress, fan_out

log = logging.getLogger("vae_core")


def _ints(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256) for a tuple option; the entries' bounds are the config's to check."""
    try:
        return parse_ints(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_config_options(t: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per ModelConfig/TrainConfig field a user sets, from the field's declaration.

    The option's dest is the field's name, its default the field's default and its help the
    field's; the kind follows the default: a bool is a flag, a tuple comma-separated integers.
    """
    for f in option_fields():
        if f.name in skip:
            continue
        kw: dict[str, Any] = dict(dest=f.name, default=f.default, help=f.metadata["help"])
        if isinstance(f.default, bool):  # a flag that turns a default-off field on (--no-X for a default-on one)
            kw["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        elif f.metadata["choices"] is not None:
            kw.update(type=type(f.default), choices=f.metadata["choices"])
        else:  # --warmup WARMUP, not WARMUP_FRACTION: the value is named as the option is
            kw.update(type=_ints if isinstance(f.default, tuple) else type(f.default),
                      metavar=cli_flag(f)[2:].replace("-", "_").upper())
        t.add_argument(cli_flag(f), **kw)


def _add_diagnose_options(d: argparse.ArgumentParser) -> None:
    """One option per declared diagnose option (`vae_core.metrics.pipeline.options`), from its declaration:
    dest the field's name, its default, its help. A value is parsed as its declaration says ("auto" where
    allowed); one it refuses stays text, for `DiagnoseOptions` in `_diagnose` to refuse with its sentence
    (one line on stderr, exit status 2, as every other error of the command)."""
    from .metrics.pipeline.options import checked, option_fields

    def parse(name: str) -> Callable[[str], Any]:
        def value(text: str) -> Any:
            try:
                return checked(name, text)
            except ValueError:
                return text
        return value

    for f in option_fields():
        names = f.metadata["cli"]
        d.add_argument(*names, dest=f.name, default=f.default, type=parse(f.name), help=f.metadata["help"],
                       metavar=f.metadata["metavar"] or names[0][2:].replace("-", "_").upper())


def config_argv(*configs: ModelConfig | TrainConfig) -> list[str]:
    """The `train` options that rebuild these configs: what `_add_config_options` parses back."""
    args: list[str] = []
    for cfg in configs:
        for f in filter(is_option, fields(cfg)):
            v, flag = getattr(cfg, f.name), cli_flag(f)
            if isinstance(v, bool):
                args += [] if v == f.default else [flag if v else "--no-" + flag[2:]]
            else:  # repr: a float's shortest text that parses back to the same float
                args += [flag, ints_text(v) if isinstance(v, tuple) else repr(v) if isinstance(v, float) else str(v)]
    return args


def _add_device_option(p: argparse.ArgumentParser) -> None:
    """--device: where the work runs; not stored in the run, which loads the same whatever device made it."""
    p.add_argument("--device", default="auto", choices=devices.CHOICES,
                   help="where to compute: auto takes the GPU (CUDA) when PyTorch sees one, else the CPU; under "
                   "torchrun each process takes GPU LOCAL_RANK")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own code for usage errors)
        self.exit(2, None if distributed.job_rank() else f"{self.prog}: error: {message} (see --help)\n")


def _add_train_options(t: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """train's options; for sweep, --beta takes a list and --out names the sweep directory."""
    t.add_argument("--data", default="mnist", help="dataset id (digits, mnist, sprites, planted) or a path to .npz/.npy/.csv/"
                   "a folder or .zip of images")
    t.add_argument("--n", type=int, default=None, help="use at most this many items (sprites: how many to generate)")
    _add_config_options(t, skip=("beta",) if sweep else ())  # --latent-dim, --hidden, --epochs, ...: one per field
    if sweep:
        t.add_argument("--beta", required=True, help="comma-separated KL weights (the runs' only difference), "
                       "e.g. 0.25,0.5,1,2,4,8")
    if sweep:
        t.add_argument("--out", required=True, help="sweep directory to write: OUT/beta-<value>/ per run, OUT/sweep.json")
        t.add_argument("--overwrite", action="store_true", help="replace the sweep's existing run directories")
    else:
        t.add_argument("--out", required=True, help="run directory to write (must not exist unless --overwrite)")
        t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    _add_device_option(t)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--progress-jsonl", metavar="PATH", default=None,
                   help="append one JSON object per line to PATH as training goes: 'start', a 'step' line at most "
                   "every 0.5 s, one 'epoch' line per epoch (the history.csv row, kl_dim_j included), 'saved' at the "
                   "end; for the app or any script that watches a run" + (" (a sweep: each run's lines in turn)" if sweep else ""))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m vae_core", description="Train and diagnose Variational Autoencoders.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a VAE and write a run directory",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Train a VAE; writes OUT/config.json, model.safetensors, history.csv (and epoch_codes.npz "
                       "with --record-codes N > 0) atomically. "
                       "Started by torchrun (torchrun --nproc-per-node N -m vae_core train ...), the N processes train "
                       "one model with DistributedDataParallel: each takes its share of every epoch and batch-size / N "
                       "items per step; rank 0 evaluates, prints and writes the run.")
    _add_train_options(t)

    s = sub.add_parser("sweep", help="train one run per beta (a beta sweep) into OUT/beta-<value>/",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Train runs identical but for beta (same data, options and seed), one after "
                       "another, each a normal run directory OUT/beta-<value>/, and OUT/sweep.json naming the runs "
                       "and betas (rewritten as each run finishes). Compare draws a sweep's collapse cascade.")
    _add_train_options(s, sweep=True)

    d = sub.add_parser("diagnose", help="report collapse, MI, IWAE, variance law, blur and MIG",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Diagnose a run directory or a model file on a dataset (nats per data point).")
    d.add_argument("model", metavar="MODEL", help="a run directory; a .zip of torch.export programs (encode.pt2 and "
                   "decode.pt2, each written by torch.export.save) or of ONNX graphs (encode.onnx and decode.onnx), "
                   "each with an optional meta.json (likelihood, scale, input_shape, latent_dim); or a TorchScript "
                   "file (torch.jit.save; deprecated upstream). A model file runs in a sandboxed worker process")
    d.add_argument("--data", required=True, help="dataset id (digits, mnist, sprites, planted) or a path to a data file")
    _add_diagnose_options(d)  # --n-points, --iwae-k, --budget, --seed, --split-seed: one per declared option
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--progress", action="store_true", help="show the progress bar (on stderr) even when stderr "
                   "is not a terminal")
    d.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    _add_device_option(d)
    return p


class _TqdmProgress:
    """Progress events (vae_core.progress) as one tqdm bar on stderr; stdout stays the command's output.

    The bar counts `units` of the whole job (None: the first event's total, as training's steps),
    moved on by each event's fraction; `label(event)` gives the bar's description and postfix for
    that event (None: leave them). disable: True (--quiet), False (show even when stderr is not a
    terminal), None (on a terminal only). It never asks to stop.
    """

    def __init__(self, disable: bool | None, units: int | None = None,
                 label: Callable[[Progress], tuple[str | None, dict[str, Any] | None]] | None = None,
                 **bar: Any):
        from tqdm import tqdm

        self.bar = tqdm(total=units, file=sys.stderr, disable=disable, dynamic_ncols=True, **bar)
        self.label = label
        self.desc = ""

    def __call__(self, event: Progress) -> bool:
        if self.bar.total is None:
            self.bar.total = event.total
        # floor, with a little room for float rounding: step/total_steps x total_steps is the step count
        done = math.floor(self.bar.total * min(max(event.fraction, 0.0), 1.0) + 1e-9)
        desc, postfix = self.label(event) if self.label is not None else (None, None)
        if desc is not None and desc != self.desc:  # a new part: shown at once
            self.desc = desc
            self.bar.set_description(desc, refresh=done <= self.bar.n)  # tqdm adds ": "
        if postfix is not None:
            self.bar.set_postfix(postfix, refresh=False)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)  # tqdm redraws at most every mininterval
        return False

    def close(self) -> None:
        self.bar.close()


def _train_label(event: Progress) -> tuple[None, dict[str, Any] | None]:
    """The training bar's postfix: the step's loss terms every 10 steps, the held-out ELBO after an epoch."""
    i = event.info
    if event.what == "step" and i["step"] % 10 == 0:
        return None, dict(epoch=i["epoch"], loss=f"{i['loss']:.1f}", kl=f"{i['kl']:.1f}", beta=f"{i['beta']:.2f}")
    if event.what == "epoch":
        return None, dict(epoch=i["epoch"], loss=f"{i['loss']:.1f}", kl=f"{i['kl']:.1f}",
                          eval_elbo=f"{i['eval_elbo']:.1f}")
    return None, None


def _diagnose_bar(disable: bool | None) -> _TqdmProgress:
    """diagnose's bar: percent of the report, the part it is in as the description."""
    # leave=False: the bar clears itself, so an error stays one line on stderr
    return _TqdmProgress(disable, units=100, label=lambda e: (f"diagnose {e.what}", None), mininterval=0.25,
                         leave=False, desc="diagnose:",
                         bar_format="{desc}{percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")


class _JsonlProgress:
    """Appends training's progress as JSON lines (flushed at once), so another process can follow a run:
    'start', a 'step' line (fit's step info) at most every STEP_EVERY_S and at the last step, an 'epoch'
    line per epoch (the history row), and the 'saved' line the command writes. It never asks to stop.

    Non-finite numbers are written as null: every line is strict JSON.
    """

    STEP_EVERY_S = 0.5  # step lines are throttled: a tiny model takes thousands of steps a second

    def __init__(self, path: str | Path, epochs: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "a", encoding="utf-8")
        self.t0 = time.perf_counter()
        self.last_step = -float("inf")
        self.write("start", epochs=epochs, pid=os.getpid())

    def write(self, event: str, **fields: Any) -> None:
        def clean(v: Any) -> Any:
            return v if not isinstance(v, float) or math.isfinite(v) else None

        line = {"event": event, "elapsed": round(time.perf_counter() - self.t0, 4),
                **{k: clean(v) for k, v in fields.items()}}
        self.f.write(json.dumps(line, allow_nan=False) + "\n")
        self.f.flush()

    def __call__(self, event: Progress) -> bool:
        if event.what == "epoch":
            self.write("epoch", **event.info)
        elif event.what == "step":
            now = time.perf_counter()
            if now - self.last_step >= self.STEP_EVERY_S or event.done == event.total:
                self.last_step = now
                self.write("step", **event.info)
        return False

    def close(self) -> None:
        self.f.close()


def _configs(a: argparse.Namespace, input_shape: tuple[int, int, int]) -> tuple[ModelConfig, TrainConfig]:
    """The configs the options ask for (each option's dest is its field's name); the shape comes from the data."""
    return configs_from_options(vars(a), input_shape)


def _train(a: argparse.Namespace) -> int:
    """Train, alone or as one rank of a torchrun job (distributed.from_env says which)."""
    group = distributed.from_env().start()
    if not group.is_main:  # rank 0 speaks for the job
        logging.getLogger("vae_core").setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as held:
            device, out = group.agree(lambda: _train_checks(a, group, held))
            progress = _JsonlProgress(a.progress_jsonl, a.epochs) if a.progress_jsonl and group.is_main else None
            if progress is not None:
                held.callback(progress.close)
            return _train_into(a, out, progress, device, group)
    finally:
        group.close()


def _train_checks(a: argparse.Namespace, group: distributed.Single,
                  held: contextlib.ExitStack) -> tuple[torch.device, Path | None]:
    """Everything that can be checked before the data is loaded: the options (bounds included; the model's
    size is checked again with the data's shape), the device and, on rank 0 only, --out, locked in `held`."""
    from .runs.checkpoints import check_out, run_lock

    if a.n is not None and a.n < 1:
        raise ValueError(f"--n must be >= 1, got {a.n}")
    _configs(a, (1, 1, 1) if a.arch == "mlp" else (1, 2 ** len(a.conv_channels), 2 ** len(a.conv_channels)))
    device = devices.resolve(a.device, group.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not group.is_main:
        return device, None
    out = check_out(a.out, a.overwrite)
    held.enter_context(run_lock(out))  # a second training on the same --out fails here, at once
    return device, out


def _train_into(a: argparse.Namespace, out: Path | None, progress: "_JsonlProgress | None", device: torch.device,
                group: distributed.Single) -> int:
    from . import data as data_ids
    from .runs.checkpoints import save_run
    from .models import VAE
    from .train import fit

    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    mcfg, tcfg, train, ev = group.agree(lambda: _train_data(a, group))
    torch.manual_seed(tcfg.seed)
    model = VAE(mcfg).to(device)
    bar = _TqdmProgress(disable=a.quiet or not group.is_main, unit="step", label=_train_label)
    recorder = _code_recorder(model, ev, tcfg) if group.is_main else None
    try:
        hist = fit(model, train, ev if group.is_main else None, tcfg, group=group,
                   progress=fan_out(bar, progress, recorder) if group.is_main else None)
    finally:
        bar.close()
    if not group.is_main:
        return 0
    if not hist.rows:
        raise RuntimeError(f"no epoch finished: {hist.stopped_reason}; nothing saved")
    dataset_id = a.data if a.data in data_ids.BUILTIN else str(Path(a.data).resolve())
    save_run(out, model, tcfg, hist.rows, dataset=dataset_id, started=started, overwrite=a.overwrite,
             extra={"n": a.n, "stopped_reason": hist.stopped_reason, "completed": hist.completed,
                    "n_train": len(train), "n_eval": len(ev)},
             extra_files=() if recorder is None else (recorder.save,))
    if progress is not None:
        progress.write("saved", out=str(out), epochs_done=len(hist.rows), stopped_reason=hist.stopped_reason)
    last = hist.rows[-1]
    if hist.stopped_reason:
        print(f"warning: {hist.stopped_reason}", file=sys.stderr)
    print(f"saved {out}: {len(hist.rows)} epochs, held-out ELBO {last['eval_elbo']:.2f} nats "
          f"(recon {last['eval_recon_nll']:.2f}, KL {last['eval_kl']:.2f})", file=sys.stderr)
    return 0


def _code_recorder(model: torch.nn.Module, ev: Any, tcfg: TrainConfig) -> Any:
    """The recorder of --record-codes held-out points (vae_core.runs.epoch_codes), with epoch 0 (the initial
    weights) recorded; None when it is off or nothing is held out."""
    from .runs.epoch_codes import CodeRecorder, epoch_sample

    if tcfg.record_codes == 0:
        return None
    if len(ev) == 0:
        log.warning("--record-codes: nothing is held out (--eval-fraction 0), so no codes are recorded")
        return None
    idx = epoch_sample(len(ev), ev.y, tcfg.seed, size=min(tcfg.record_codes, len(ev)))
    recorder = CodeRecorder(model, ev.subset(idx).x, idx)
    recorder.record(0)
    return recorder


def _train_data(a: argparse.Namespace, group: distributed.Single):
    """The configs for the data's shape and its train/eval split; every rank loads the same data."""
    from .data import load_dataset

    data = load_dataset(a.data, n=a.n, seed=a.seed)
    mcfg, tcfg = _configs(a, data.shape)
    train, ev = data.split(tcfg.eval_fraction, tcfg.seed)
    group.shard_size(len(train))  # every rank must get at least one item
    return mcfg, tcfg, train, ev


def _sweep(a: argparse.Namespace) -> int:
    """Train one run per beta, one after another, into OUT/beta-<value>/, keeping OUT/sweep.json current."""
    from . import data as data_ids
    from .sweep import beta_dirname, parse_betas, write_sweep_json

    if distributed.job_rank() is not None:
        raise ValueError("sweep runs its trainings one after another in one process; start it without torchrun")
    betas = parse_betas(a.beta)
    out = Path(a.out)
    for b in betas:  # every run's directory checked before the first one trains
        p = out / beta_dirname(b)
        if p.exists() and not a.overwrite:
            raise ValueError(f"{p} exists; pass --overwrite to replace the sweep's runs, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    dataset = a.data if a.data in data_ids.BUILTIN else str(Path(a.data).resolve())
    status: dict[float, str] = {b: "pending" for b in betas}
    write_sweep_json(out, betas, status, dataset=dataset)
    for i, b in enumerate(betas):
        print(f"sweep: beta = {b:g} ({i + 1} of {len(betas)})", file=sys.stderr)
        status[b] = "running"
        write_sweep_json(out, betas, status, dataset=dataset)
        try:
            _train(argparse.Namespace(**{**vars(a), "beta": b, "out": str(out / beta_dirname(b))}))
        except BaseException:
            status[b] = "failed"
            write_sweep_json(out, betas, status, dataset=dataset)
            raise
        stopped = json.loads((out / beta_dirname(b) / "config.json").read_text()).get("stopped_reason")
        status[b] = "stopped" if stopped else "done"
        write_sweep_json(out, betas, status, dataset=dataset)
    print(f"saved sweep {out}: {len(betas)} runs (betas {', '.join(f'{b:g}' for b in betas)})", file=sys.stderr)
    return 0


def _diagnose(a: argparse.Namespace) -> int:
    from .runs.run_load import eval_split, load_model
    from .data import check_fits, load_dataset
    from .metrics.pipeline.options import DiagnoseOptions, option_fields
    from .metrics.pipeline.report import diagnose
    from .models import VAE

    from . import cores

    opts = DiagnoseOptions(**{f.name: getattr(a, f.name) for f in option_fields()})  # checked once more
    device = devices.resolve(a.device)
    # one of the machine's heavy-job slots (vae_core/cores.py): several diagnoses at once take turns
    # instead of thrashing. The slot covers loading the model too (a user's model starts its worker and
    # imports torch there: seconds of CPU that slowed the pilot of the diagnosis holding the slot, which
    # then cut its points to a handful); the budget counts from diagnose()
    with cores.core_slot("this diagnosis", say=lambda text: print(f"note: {text}", file=sys.stderr, flush=True)):
        model = load_model(a.model)
        if isinstance(model, VAE):  # a run's model; a model file runs in its sandboxed worker, on the CPU
            model.to(device)
        elif device.type == "cuda":
            log.warning("a model file runs in a sandboxed worker process on the CPU; --device cuda applies "
                        "to run directories")
        data = load_dataset(a.data)
        if getattr(model, "input_shape", None) is None:
            model.set_input_shape(data.shape)
        check_fits(data, model.input_shape)
        split = eval_split(a.model)  # the run's seed, eval fraction, --n and dataset: its exact split
        bar = _diagnose_bar(disable=True if a.quiet else False if a.progress else None)
        try:
            report = diagnose(model, data, **opts.kwargs(run_split_seed=split.seed),
                              eval_fraction=split.eval_fraction, train_n=split.n, train_dataset=split.dataset,
                              progress=bar)
        finally:
            bar.close()
    if a.json:
        sys.stdout.write(json.dumps(report.to_dict(), allow_nan=False) + "\n")
    else:
        sys.stdout.write(report.format_table() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    rank = distributed.job_rank()  # under torchrun, rank 0 or the rank that failed speaks for the job
    try:
        from .limits import limits

        limits()  # every VAE_EXPLORER_* setting checked before any work: a bad one is one sentence, exit 2
        return {"train": _train, "sweep": _sweep}.get(args.command, _diagnose)(args)
    except distributed.Stopped:  # another rank failed and said why
        return 0
    except KeyboardInterrupt:
        if not rank:
            print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # every error is one line; ValueError covers DataError, CheckpointError, LimitError
        from .errors import sentence

        if rank is not None and distributed.lost_peer(e):  # the rank that ended, or torchrun, says why
            return 1
        ours = isinstance(e, (ValueError, OSError, RuntimeError, MemoryError))
        log.debug("error", exc_info=True)
        hint = "" if ours else " (unexpected; please report it with the command you ran)"
        print(f"error: {sentence(e)}{hint}", file=sys.stderr)
        return 2

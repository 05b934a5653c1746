"""Today's model formats behind the sandbox: zips of torch.export programs and of ONNX graphs, beside TorchScript.

Every model is an eager PyTorch module made here (a small conv VAE and an MLP VAE), written in
each format into tmp files (no committed blobs), loaded through the project's loader (which runs
it in a sandbox worker) and checked against the eager module's own encode/decode. The parent
process never opens a user's program: the module-scoped loads run with torch.export.load,
onnx's parsers and onnxruntime's session patched to raise here.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from vae_core.errors import CheckpointError
from vae_core.runs.model_files import load_model_file
from vae_core.runs.run_load import load_model
from vae_core.runs.model_zips import MAX_META_BYTES, parse_meta, read_model_zip, zip_format
from vae_core.sandbox import formats, proxy
from benchmarks.model_formats import Dec, _pt2, write_model
from zips import write_zip

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("torchscript", "export", "onnx")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::torch.jit.TracerWarning")


# ------------------------------------------------------------------ the eager models


class ConvVAE(nn.Module):
    """1x8x8 -> D=3, with batch norm (eval mode matters for an export) and a Bernoulli decoder."""

    shape, latent = (1, 8, 8), 3

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.LeakyReLU(), nn.Flatten(),
                                 nn.Linear(64, 2 * self.latent))
        self.fc = nn.Linear(self.latent, 64)
        self.dec = nn.Sequential(nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.BatchNorm2d(4), nn.LeakyReLU(),
                                 nn.Conv2d(4, 1, 3, 1, 1))
        with torch.no_grad():  # running statistics far from (0, 1): train-mode exports would differ
            for bn in (self.enc[1], self.dec[1]):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(self.fc(z).view(-1, 4, 4, 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


class MlpVAE(nn.Module):
    """1x6x6 -> D=2, an MLP with a Bernoulli decoder."""

    shape, latent = (1, 6, 6), 2

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 2 * self.latent))
        self.dec = nn.Sequential(nn.Linear(self.latent, 16), nn.Tanh(), nn.Linear(16, 36))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z)).view(-1, 1, 6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def _made(cls) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


def _raise(*_a, **_k):
    raise AssertionError("a user's program was opened in the parent process")


@contextlib.contextmanager
def parent_refuses_programs():
    """torch.export.load, onnx's parsers and onnxruntime's session raise in this (the parent) process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.export, "load", _raise)
        mp.setattr(onnxruntime, "InferenceSession", _raise)
        for name in ("load", "load_model", "load_model_from_string", "load_from_string"):
            mp.setattr(onnx, name, _raise)
        yield


def load_here(path: Path, shape=None) -> proxy.RemoteModel:
    """The project's loader, with the parent refusing to open any program itself."""
    with parent_refuses_programs():
        return load_model_file(path, shape)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{(arch, fmt): path} for both eager models in the three formats."""
    folder = tmp_path_factory.mktemp("formats")
    return {(cls.__name__, fmt): write_model(_made(cls), fmt, folder) for cls in (ConvVAE, MlpVAE) for fmt in FORMATS}


@pytest.fixture(scope="module")
def loaded(files):
    """{(arch, fmt): the RemoteModel loaded through the project's loader}, each closed at the end."""
    out = {}
    for (arch, fmt), path in files.items():
        shape = ConvVAE.shape if arch == "ConvVAE" else MlpVAE.shape
        with parent_refuses_programs():
            out[arch, fmt] = load_model(path, shape)
    yield out
    for m in out.values():
        m.close()


# ------------------------------------------------------------------ loading and running


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cls", [ConvVAE, MlpVAE], ids=["conv", "mlp"])
def test_encode_decode_equal_the_eager_module(loaded, cls, fmt):
    m, ref = loaded[cls.__name__, fmt], _made(cls)
    assert isinstance(m, proxy.RemoteModel) and m.format == fmt
    assert m.latent_dim == cls.latent and m.likelihood == "bernoulli" and m.declared_scale is None
    assert m.protection.startswith("landlock") or m.protection.startswith("none")
    assert "thread(s) started before it" not in m.protection  # onnxruntime's threads start under Landlock too
    g = torch.Generator().manual_seed(1)
    x, z = torch.rand(5, *cls.shape, generator=g), torch.randn(7, cls.latent, generator=g)
    mu, logvar = m.encode(x)
    with torch.no_grad():
        rmu, rlogvar = ref.encode(x)
        rmean = ref.decode(z)
    torch.testing.assert_close(mu, rmu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logvar, rlogvar, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.decode(z), rmean, atol=1e-5, rtol=1e-5)
    # the loss on top: -log p(x|z) of the Bernoulli mean, against torch.distributions
    want = -torch.distributions.Bernoulli(probs=rmean[:5], validate_args=False).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(m.nll(x, z[:5]), want, atol=1e-3, rtol=1e-4)


def test_fixed_batch_programs_run_in_chunks(tmp_path):
    """Programs exported with one example row (no dynamic batch) still take any batch."""
    ref = _made(MlpVAE)
    g = torch.Generator().manual_seed(2)
    x, z = torch.rand(5, *MlpVAE.shape, generator=g), torch.randn(3, MlpVAE.latent, generator=g)
    with torch.no_grad():
        rmu, _ = ref.encode(x)
        rmean = ref.decode(z)
    for fmt in ("export", "onnx"):
        m = load_here(write_model(ref, fmt, tmp_path, dynamic=False), MlpVAE.shape)
        try:
            torch.testing.assert_close(m.encode(x)[0], rmu, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(m.decode(z), rmean, atol=1e-5, rtol=1e-5)
        finally:
            m.close()


def test_meta_json_declares_likelihood_scale_and_shape(tmp_path):
    ref = _made(MlpVAE)
    meta = {"likelihood": "gaussian", "scale": 0.25, "input_shape": list(MlpVAE.shape), "latent_dim": 2}
    m = load_here(write_model(ref, "export", tmp_path, meta=meta))  # no shape given: meta.json's is used
    try:
        assert m.input_shape == MlpVAE.shape and m.latent_dim == 2
        assert m.likelihood == "gaussian" and m.declared_scale == pytest.approx(0.25)
        g = torch.Generator().manual_seed(3)
        x, z = torch.rand(4, *MlpVAE.shape, generator=g), torch.randn(4, 2, generator=g)
        with torch.no_grad():
            mean = ref.decode(z)
        want = -torch.distributions.Normal(mean, 0.25).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(m.nll(x, z), want, atol=1e-3, rtol=1e-4)
        with pytest.raises(CheckpointError, match=r"meta\.json says the model takes 1 x 6 x 6 images, the data is "
                                                   r"1 x 8 x 8"):
            load_here(m.path, (1, 8, 8))
    finally:
        m.close()


def test_meta_latent_dim_must_match_the_decoder(tmp_path):
    path = write_model(_made(MlpVAE), "onnx", tmp_path, meta={"latent_dim": 5}, dynamic=False)
    with pytest.raises(CheckpointError, match=r"MlpVAE-onnx\.zip: meta\.json says latent_dim 5, but decode takes z "
                                               r"of 2 dimensions"):
        load_here(path)


# ------------------------------------------------------------------ refusals (server side: no worker started)


@pytest.mark.parametrize("raw, needle", [
    (b"{", "is not valid JSON"),
    (b"[1, 2]", "must hold one JSON object"),
    (b'{"likelihood": "poisson"}', 'likelihood must be "bernoulli" or "gaussian"'),
    (b'{"likelihood": "gaussian", "scale": -1}', "scale must be a finite number > 0"),
    (b'{"likelihood": "gaussian", "scale": NaN}', "scale must be a finite number > 0"),
    (b'{"likelihood": "gaussian", "scale": "0.1"}', "scale must be a finite number > 0"),
    (b'{"scale": 0.1}', 'give "likelihood": "gaussian" with it'),
    (b'{"input_shape": [28, 28]}', "input_shape must be [C, H, W]"),
    (b'{"input_shape": [1, 28, 28.0]}', "input_shape must be [C, H, W]"),
    (b'{"input_shape": [1000, 8, 8]}', "is not an image of at most 4 channels"),
    (b'{"latent_dim": 0}', "latent_dim must be a whole number from 1"),
    (b'{"latent_dim": true}', "latent_dim must be a whole number from 1"),
    (b'{"latent": 4}', "has an unknown key 'latent'"),
    (b"\xff\xfe", "is not valid JSON"),
])
def test_bad_meta_is_refused_by_name(tmp_path, raw, needle):
    path = write_zip(tmp_path / "model.zip", {"encode.onnx": b"x", "decode.onnx": b"x", "meta.json": raw})
    with pytest.raises(CheckpointError) as e:
        read_model_zip(path)
    msg = str(e.value)
    assert msg.startswith("model.zip: meta.json") and needle in msg and "\n" not in msg


def test_meta_json_is_read_through_a_cap(tmp_path):
    big = json.dumps({"likelihood": "bernoulli", "pad": "x" * MAX_META_BYTES}).encode()
    path = write_zip(tmp_path / "model.zip", {"encode.pt2": b"x", "decode.pt2": b"x", "meta.json": big})
    with pytest.raises(CheckpointError, match=r"model\.zip: meta\.json holds [\d,]+ bytes, over 65,536"):
        read_model_zip(path)


def test_good_meta_is_kept():
    assert parse_meta(b'{"likelihood": "gaussian", "scale": 2, "input_shape": [3, 4, 5], "latent_dim": 7}', "m") == {
        "likelihood": "gaussian", "scale": 2.0, "input_shape": [3, 4, 5], "latent_dim": 7}


@pytest.mark.parametrize("members, needle", [
    ({"encode.pt2": b"x"}, "model.zip: decode.pt2 is missing; a torch.export model zip holds encode.pt2 and "
                           "decode.pt2 written by torch.export.save"),
    ({"decode.onnx": b"x", "meta.json": b"{}"}, "model.zip: encode.onnx is missing; an ONNX model zip holds"),
    ({"encode.pt2": b"x", "decode.pt2": b"x", "decode.onnx": b"x"}, "holds both .pt2 and .onnx programs"),
    ({"a/encode.pt2": b"x", "b/encode.pt2": b"x", "decode.pt2": b"x"}, "holds more than one encode.pt2"),
])
def test_zip_members_are_checked(tmp_path, members, needle):
    with pytest.raises(CheckpointError) as e:
        load_here(write_zip(tmp_path / "model.zip", members))
    assert needle in str(e.value)


def test_oversize_member_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_FILE_MB", "1")
    path = write_zip(tmp_path / "model.zip", {"encode.pt2": bytes(2 * 2**20), "decode.pt2": b"x"})
    assert path.stat().st_size < 2**20  # zeros compress: the declared, unpacked size is what counts
    with pytest.raises(CheckpointError, match=r"model\.zip: encode\.pt2 and decode\.pt2 hold 2\.0 MB unpacked, over "
                                               r"the limit of 1 MB; set VAE_EXPLORER_MAX_FILE_MB"):
        load_here(path)


def test_zip_format_is_told_by_members(tmp_path):
    assert zip_format(write_zip(tmp_path / "a.zip", {"run/encode.pt2": b""})) == "export"
    assert zip_format(write_zip(tmp_path / "b.zip", {"decode.onnx": b""})) == "onnx"
    assert zip_format(write_zip(tmp_path / "c.zip", {"config.json": b""})) is None
    assert zip_format(tmp_path / "c.zip") is None and zip_format(tmp_path / "missing.zip") is None


# ------------------------------------------------------------------ refusals (in the worker)


def _onnx_graph(node_domain: str = "", external: bool = False, n_out: int = 1) -> bytes:
    """A hand-made ONNX graph z (B, 2) -> ..., with a custom-domain operator or an external tensor."""
    from onnx import TensorProto, helper

    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 2])
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(n_out)]
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    if external:
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2])
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "/etc/hostname"), ("offset", "0"), ("length", "16")):
            w.external_data.add(key=k, value=v)
    nodes = [helper.make_node("MatMul", ["z", "w"], ["h"])]
    nodes.append(helper.make_node("Leak", ["h"], ["y0"], domain=node_domain) if node_domain
                 else helper.make_node("Identity", ["h"], ["y0"]))
    nodes += [helper.make_node("Identity", ["h"], [f"y{i}"]) for i in range(1, n_out)]
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(node_domain, 1)] if node_domain else [])
    return helper.make_model(helper.make_graph(nodes, "g", [z], outs, [w]), opset_imports=opsets).SerializeToString()


@pytest.mark.parametrize("decode, needle", [
    (_onnx_graph(node_domain="com.evil"), "decode.onnx imports the custom operator domain 'com.evil'"),
    (_onnx_graph(external=True), "decode.onnx stores tensor 'w' as external data"),
    (b"not a protobuf at all \xff\xff\xff", "decode.onnx is not an ONNX model"),
])
def test_onnx_refusals(tmp_path, decode, needle):
    path = write_zip(tmp_path / "bad.zip", {"encode.onnx": _onnx_graph(n_out=2), "decode.onnx": decode})
    with pytest.raises(CheckpointError) as e:
        load_here(path)
    msg = str(e.value)
    assert msg.startswith("bad.zip: ") and needle in msg and "\n" not in msg, msg


def _pt2_with_from_file() -> bytes:
    """An exported encode whose graph also reads a file with aten::from_file (inserted after export)."""

    class E(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :2], x.flatten(1)[:, 2:4]

    ep = torch.export.export(E(), (torch.rand(2, 1, 2, 2),))
    g = ep.graph_module.graph
    with g.inserting_before(next(n for n in g.nodes if n.op == "output")):
        n = g.call_function(torch.ops.aten.from_file.default, ("/etc/hostname",), {"size": 4, "dtype": torch.uint8})
        n.meta["val"] = torch.empty(4, dtype=torch.uint8)
    ep.graph_module.recompile()
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def test_pt2_refusals(tmp_path):
    good_decode = _pt2(Dec(_made(MlpVAE)), torch.randn(2, 2))
    cases = [
        (_pt2_with_from_file(), "encode.pt2 uses aten::from_file, which reads or writes files"),
        (b"\x00garbage, not a zip", "encode.pt2 is not a torch.export program (not a .pt2 archive)"),
        (write_zip(tmp_path / "inner.zip", {"x": b"y"}).read_bytes(), "encode.pt2 could not be loaded by torch.export.load"),
    ]
    for i, (encode, needle) in enumerate(cases):
        path = write_zip(tmp_path / f"bad{i}.zip", {"encode.pt2": encode, "decode.pt2": good_decode})
        with pytest.raises(CheckpointError) as e:
            load_here(path)
        msg = str(e.value)
        assert msg.startswith(f"bad{i}.zip: ") and needle in msg and "\n" not in msg, msg


def test_warmup_program_ships_and_runs():
    """The worker's warm-up program (the project's own, made by `python -m vae_core.sandbox.formats`) loads with
    this torch and computes what its module does."""
    ep = formats.warmup_program()
    torch.manual_seed(0)
    ref = formats._Warmup().eval()
    z = torch.randn(5, 2)
    torch.testing.assert_close(ep.module()(z), ref(z))
    formats.check_program(ep, "warmup.pt2")


def test_check_program_refuses_other_namespaces():
    """The allow-list on a program made here: a custom operator (torch.library) is outside aten."""

    @torch.library.custom_op("vaetest::leak", mutates_args=())
    def leak(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @leak.register_fake
    def _(x):
        return torch.empty_like(x)

    class M(nn.Module):
        def forward(self, x):
            return torch.ops.vaetest.leak(x), x

    ep = torch.export.export(M(), (torch.rand(2, 2),))
    with pytest.raises(ValueError, match=r"m\.zip: encode\.pt2 uses vaetest::leak, which is outside the aten and "
                                         r"prim namespaces"):
        formats.check_program(ep, "m.zip: encode.pt2")


# ------------------------------------------------------------------ the decoder as ONNX, for the browser


def _ort_decode(data: bytes, z: torch.Tensor) -> torch.Tensor:
    s = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(s.run(None, {s.get_inputs()[0].name: z.numpy()})[0])


@pytest.mark.slow
@pytest.mark.parametrize("arch, fmt", [("ConvVAE", f) for f in FORMATS] + [("MlpVAE", "export")])
def test_decoder_onnx_equals_the_eager_decode(loaded, arch, fmt):
    cls = ConvVAE if arch == "ConvVAE" else MlpVAE
    with parent_refuses_programs():
        data = loaded[arch, fmt].decoder_onnx()  # exported and checked in a worker
    assert isinstance(data, bytes) and 0 < len(data) < proxy.MAX_ONNX_MB * 2**20
    z = torch.randn(5, cls.latent, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = _made(cls).decode(z)
    got = _ort_decode(data, z)  # the test, not the server, runs onnxruntime on it
    assert got.shape == (5, *cls.shape)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert loaded[arch, fmt].decoder_onnx() is data  # made once per model


class _NoisyDecode(MlpVAE):
    """decode adds noise: its ONNX export cannot equal it, so the worker must refuse it."""

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z) + torch.randn(z.shape[0], 36)).view(-1, 1, 6, 6)


def test_decoder_onnx_refuses_an_export_that_differs(tmp_path):
    m = load_here(write_model(_made(_NoisyDecode), "torchscript", tmp_path), MlpVAE.shape)
    try:
        with parent_refuses_programs(), pytest.raises(CheckpointError, match=r"_NoisyDecode\.ts: the decoder's ONNX export differs from the "
                                                   r"model's decode by [\d.e-]+ \(more than 0\.0001\)"):
            m.decoder_onnx()
    finally:
        m.close()


def test_decoder_onnx_size_is_capped(tmp_path, monkeypatch):
    m = load_here(write_model(_made(MlpVAE), "onnx", tmp_path), MlpVAE.shape)
    try:
        monkeypatch.setattr(proxy, "MAX_ONNX_MB", 1 / 1024)  # 1 kB: the graph is larger
        with pytest.raises(CheckpointError, match=r"MlpVAE-onnx\.zip: the decoder's ONNX graph is [\d.]+ MB, over "
                                                   r"the 0 MB a browser decoder may take"):
            m.decoder_onnx()
    finally:
        m.close()


def test_worker_size_claims_are_checked_before_reading(tmp_path):
    """A worker claiming more bytes than its IO file holds is stopped, nothing allocated for the claim."""

    class _W:
        def __init__(self, fd):
            self.io_fd = fd

    f = tmp_path / "io"
    f.write_bytes(b"12345")
    with open(f, "rb") as fh:
        assert proxy._read_bytes(_W(fh.fileno()), 5, 100, "x") == b"12345"
        for claim in (6, -1, 0, 2.5, "5", None):
            with pytest.raises(proxy._Stopped):
                proxy._read_bytes(_W(fh.fileno()), claim, 100, "x")
        with pytest.raises(CheckpointError, match="over the 0 MB"):
            proxy._read_bytes(_W(fh.fileno()), 5, 4, "x")


# ------------------------------------------------------------------ the CLI


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_cli_help_names_the_formats():
    r = _cli("diagnose", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for needle in ("encode.pt2", "torch.export.save", "encode.onnx", "meta.json", "TorchScript", "deprecated"):
        assert needle in text, needle


@pytest.mark.slow
def test_cli_diagnose_export_and_onnx_zips(files):
    """diagnose on the conv model as .pt2 zip and ONNX zip gives the TorchScript file's figures (digits: 1x8x8)."""
    reports = {}
    for fmt in FORMATS:
        r = _cli("diagnose", files["ConvVAE", fmt], "--data", "digits", "--json", "--n-points", "50",
                 "--iwae-k", "10", "--quiet")
        assert r.returncode == 0, r.stderr
        reports[fmt] = json.loads(r.stdout)
    ref = reports["torchscript"]
    for fmt in ("export", "onnx"):
        rep = reports[fmt]
        assert rep["kl"] == pytest.approx(ref["kl"], rel=1e-4)
        assert rep["elbo"] == pytest.approx(ref["elbo"], rel=1e-3)
        assert np.allclose(rep["kl_per_dim"], ref["kl_per_dim"], rtol=1e-4, atol=1e-6)
        assert math.isfinite(rep["iwae"])


def test_cli_refuses_a_bad_zip_in_one_line(tmp_path):
    r = _cli("diagnose", write_zip(tmp_path / "model.zip", {"encode.pt2": b"x"}), "--data", "digits")
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "model.zip: decode.pt2 is missing; a torch.export model zip holds encode.pt2 and decode.pt2 written by "
        "torch.export.save"), r.stderr


# ------------------------------------------------------------------ the app: sidebar upload and pairing


def test_needed_data_text_uses_meta_input_shape(tmp_path):
    from explorer.selection import needed_data_text
    from vae_core.runs.model_zips import declared_input_shape

    path = write_zip(tmp_path / "m.zip", {"encode.onnx": b"x", "decode.onnx": b"x", "meta.json": b'{"input_shape": [3, 5, 7]}'})
    assert declared_input_shape(path) == (3, 5, 7)
    assert "upload data of shape 3 x 5 x 7 (C x H x W)" in needed_data_text(str(path))
    assert declared_input_shape(write_zip(tmp_path / "n.zip", {"encode.onnx": b"x", "decode.onnx": b"x"})) is None


def test_app_upload_of_model_zips(tmp_path, monkeypatch):
    """The sidebar takes a torch.export zip of the shipped run's model (it becomes active on mnist), and refuses
    a zip that lacks a member with the reason, keeping the active model."""
    from sidebar import open_app, text, upload
    from vae_core.runs.run_load import load_run
    from vae_core.runs.model_files import _ScriptableVAE

    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    vae = _ScriptableVAE(load_run(ROOT / "runs" / "default").model).eval()
    vae.shape, vae.latent = (1, 28, 28), 16
    path = write_model(vae, "export", tmp_path, meta={"input_shape": [1, 28, 28], "latent_dim": 16})
    at = upload(open_app(), "upload_model", "mine.zip", path.read_bytes())
    assert not at.exception and not text(at.error), text(at.error)
    assert at.session_state["model_src"].endswith("mine.zip") and at.session_state["data_src"] == "mnist"
    facts = " ".join(m.value for m in at.markdown)  # Home named an ONNX or torch.export zip "TorchScript model"
    assert "(torch.export programs, bernoulli decoder)" in facts and "TorchScript" not in facts, facts
    bad = write_zip(tmp_path / "bad.zip", {"encode.pt2": b"x"})
    at = upload(at, "upload_model", "bad.zip", bad.read_bytes())
    assert "Upload refused" in text(at.error) and "bad.zip: decode.pt2 is missing" in text(at.error)
    assert at.session_state["model_src"].endswith("mine.zip")
    # cut short on its way (half of a good zip): said so, not "not a TorchScript file" with a recipe
    raw = path.read_bytes()
    at = upload(at, "upload_model", "half.zip", raw[: len(raw) // 2])
    assert "Upload refused" in text(at.error) and "half.zip is a damaged zip" in text(at.error), text(at.error)
    assert at.session_state["model_src"].endswith("mine.zip")

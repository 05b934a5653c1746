"""Hostile data files: every size is checked before memory is allocated, every error is one sentence.

Each hostile file is made here, in the test (no committed blobs); budgets are lowered through their
VAE_EXPLORER_* variables where that keeps a test small. See docs/architecture.md, "Trust boundary".
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import resource
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, UnidentifiedImageError

from vae_core.data import DataError, DataLimitError, load_dataset
from vae_core.data import files as data_files
from vae_core.data.files import load_file
from vae_core.limits import LimitError

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, size=(5, 6, 6)).astype(np.uint8)


def _grey01() -> torch.Tensor:
    return torch.from_numpy(GREY.astype(np.float32) / 255).unsqueeze(1)


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _blank_png(w: int, h: int, bit_depth: int = 1) -> bytes:
    """A one-colour greyscale PNG of w x h, written row by row: never held decoded, even here."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" * (1 + (w * bit_depth + 7) // 8)  # filter byte 0, then the row
    z = zlib.compressobj(9)
    idat = b"".join([z.compress(row * 100) for _ in range(h // 100)] + [z.compress(row * (h % 100)), z.flush()])
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, 0, 0, 0, 0)  # greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _patch_central(data: bytes, member: int = 0, **fields: int) -> bytes:
    """A zip's bytes with fields of one central-directory entry overwritten (the local header is left alone)."""
    offsets = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"), "file_size": (24, "<I")}
    out = bytearray(data)
    at = -1
    for _ in range(member + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    for name, value in fields.items():
        off, fmt = offsets[name]
        struct.pack_into(fmt, out, at + off, value)
    return bytes(out)



@contextlib.contextmanager
def _allocates_at_most(mb: int):
    """The block's peak of new Python/numpy allocations (tracemalloc) stays under `mb` MB: a refusal came
    from the header or the declared sizes, before memory was allocated for the claim."""
    import tracemalloc

    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < mb * 2**20, f"{peak / 2**20:.1f} MB allocated before the refusal"

def _refused(path: Path, match: str | None = None, *, exact: str | None = None) -> str:
    """load_file's DataError message (asserting one), checked against a regex or the exact text."""
    with pytest.raises(DataError) as info:
        load_file(path)
    msg = str(info.value)
    if exact is not None:
        assert msg == exact
    if match is not None:
        assert re.search(match, msg), msg
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _in_child(fn) -> dict:
    """Run fn in a forked child; its outcome and the growth of its peak resident memory (MB).

    A forked child starts its peak-RSS count at its current size (checked by the calibration in
    the pixel-bomb test), so the growth is what fn allocated, whatever the test process did before.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            with contextlib.suppress(OSError):
                with open("/proc/self/clear_refs", "w") as f:  # reset the peak where the kernel allows
                    f.write("5")
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                fn()
                out = {"error": None}
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = {"error": type(e).__name__, "message": str(e), "data_error": isinstance(e, DataError)}
            out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while b := os.read(r, 65536):
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


# ---------------------------------------------------------------- images: pixel budgets before decoding


@pytest.fixture(scope="module")
def bomb_png() -> bytes:
    return _blank_png(13_000, 13_000)  # 169 M pixels, about 20 KB


def test_pixel_bomb_zip_refused_before_decoding_with_low_peak_memory(tmp_path, bomb_png):
    z = _zip(tmp_path / "bomb.zip", {f"bomb/{i}.png": bomb_png for i in range(6)})
    assert z.stat().st_size < 1_000_000  # six images of 13,000 x 13,000: 1 G pixels decoded
    calibration = _in_child(lambda: np.ones(250 * 2**20, dtype=np.uint8))
    assert calibration["peak_mb"] > 200  # the measurement sees an allocation of this size
    out = _in_child(lambda: load_file(z))
    assert out["data_error"], out
    assert out["message"] == (
        "bomb.zip: image 'bomb/0.png' (13,000 x 13,000) is 169,000,000 pixels, over the limit of 16,777,216 "
        "pixels; set the environment variable VAE_EXPLORER_MAX_IMAGE_PIXELS to raise it"
    )
    assert out["peak_mb"] < 100, out


def test_pixel_bomb_in_a_folder_refused_before_decoding(tmp_path, bomb_png):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "a.png").write_bytes(_png(GREY[0]))
    (root / "b.png").write_bytes(bomb_png)
    with pytest.raises(DataLimitError, match=r"imgs: image 'b.png' \(13,000 x 13,000\).*MAX_IMAGE_PIXELS") as info:
        load_file(root)
    assert isinstance(info.value, LimitError)


def test_total_pixels_of_all_images_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_TOTAL_PIXELS", "100")
    z = _zip(tmp_path / "many.zip", {f"{i}.png": _png(a) for i, a in enumerate(GREY)})  # 36 grey pixels each
    _refused(z, exact="many.zip: the images up to '2.png' together is 108 pixel values (width x height x channels), "
                      "over the limit of 100 pixel values (width x height x channels); set the environment variable "
                      "VAE_EXPLORER_MAX_TOTAL_PIXELS to raise it")
    monkeypatch.setenv("VAE_EXPLORER_MAX_TOTAL_PIXELS", "180")
    assert torch.equal(load_file(z).x, _grey01())


def test_stacked_images_over_the_data_budget(tmp_path, monkeypatch):
    # Each image fits, but many small ones resized up to the most common size would not.
    # Each image fits the pixel budgets, but stacked at the most common size as float32 they don't.
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    members = {f"big{i}.png": _blank_png(300, 300, 8) for i in range(3)}
    members |= {f"small{i}.png": _png(GREY[0]) for i in range(2)}
    _refused(_zip(tmp_path / "m.zip", members),
             exact="m.zip: 5 images of 300x300 as float32 needs 1.7 MB, over the limit of 1 MB; "
                   "set the environment variable VAE_EXPLORER_MAX_DATA_MB (in MB) to raise it")


def test_renamed_image_formats_are_not_decoded(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    buf = io.BytesIO()
    Image.fromarray(GREY[0]).save(buf, format="GIF")
    (root / "a.png").write_bytes(buf.getvalue())  # a GIF named .png: only PNG and JPEG decoders are tried
    _refused(root, exact="odd: image 'a.png' could not be read (it is not a PNG or JPEG image); it may be corrupt "
                         "or truncated")
    (root / "a.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # never reaches Ghostscript
    _refused(root, r"image 'a.png' could not be read")


# ---------------------------------------------------------------- zips whose headers lie


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_zip_member_size_lies(tmp_path, compression):
    good = _zip(tmp_path / "good.zip", {"0.png": _png(GREY[0]), "1.png": _png(GREY[1])}, compression)
    real = zipfile.ZipFile(good).getinfo("0.png").file_size
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_patch_central(good.read_bytes(), file_size=real - 10))  # smaller: the CRC is wrong there
    _refused(bad, exact="bad.zip: member '0.png' is corrupt (Bad CRC-32 for file '0.png'); make the zip again")
    bad.write_bytes(_patch_central(good.read_bytes(), file_size=real + 1000))  # larger: the stream ends early
    _refused(bad, exact=f"bad.zip: member '0.png' is corrupt (its header declares {real + 1000:,} bytes but it "
                        f"holds {real:,}); make the zip again")
    bad.write_bytes(_patch_central(good.read_bytes(), file_size=2**32 - 1))  # 4 GB: refused before any read
    with _allocates_at_most(50):
        _refused(bad, r"bad.zip \(uncompressed images\) needs 4,096\.0 MB, over the limit of 200 MB; "
                      r"set the environment variable VAE_EXPLORER_MAX_FILE_MB \(in MB\) to raise it")


def test_zip_unsupported_compression_or_encryption(tmp_path):
    good = _zip(tmp_path / "good.zip", {"0.png": _png(GREY[0])})
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_patch_central(good.read_bytes(), compress_type=99))
    _refused(bad, r"^bad.zip: member '0.png' is corrupt \(.*compression.*\); make the zip again$")
    bad.write_bytes(_patch_central(good.read_bytes(), flag_bits=1))
    _refused(bad, r"^bad.zip: member '0.png' is corrupt \(.*encrypted.*\); make the zip again$")


def test_empty_and_not_a_zip(tmp_path):
    z = _zip(tmp_path / "empty.zip", {})
    _refused(z, exact="empty.zip: no images found (looked for .png, .jpg, .jpeg); add some or pick another source")
    z.write_bytes(b"")
    _refused(z, r"^empty.zip: the file is empty \(0 bytes\)")  # refused from its stat, before it is opened


def test_zip_member_count_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_FILES", "3")
    z = _zip(tmp_path / "lots.zip", {f"{i}.png": _png(a) for i, a in enumerate(GREY)})
    _refused(z, exact="lots.zip: the zip's member count is 5 files, over the limit of 3 files; "
                      "set the environment variable VAE_EXPLORER_MAX_FILES to raise it")
    # An end record that claims one member: the directory's entries are counted, not believed.
    data = bytearray(z.read_bytes())
    struct.pack_into("<HH", data, data.rindex(b"PK\x05\x06") + 8, 1, 1)
    z.write_bytes(bytes(data))
    _refused(z, exact="lots.zip: the zip's member count, counted so far, is 4 files, over the limit of 3 files; "
                      "set the environment variable VAE_EXPLORER_MAX_FILES to raise it")


# ---------------------------------------------------------------- .npy / .npz: headers before np.load


def _npy_bytes(header: dict, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header) if version == (1, 0) else \
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue() + data


def test_npy_header_claiming_a_huge_shape_refused_before_allocation(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(_npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**7, 1, 1000, 1000)}, b"\0" * 64))
    with _allocates_at_most(50), pytest.raises(DataLimitError) as info:
        load_file(p)
    assert str(info.value) == (  # too large to load: it would be read in batches, over that budget too
        "huge.npy: the array of shape (10000000, 1, 1000, 1000) (read from disk in batches) needs 38,146,972.7 MB, "
        "over the limit of 65,536 MB; set the environment variable VAE_EXPLORER_MAX_MAPPED_MB (in MB) to raise it"
    )


def test_npy_budget_counts_float32_not_the_stored_dtype(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    p = tmp_path / "u8.npy"
    np.save(p, np.zeros((300, 1, 32, 32), dtype=np.uint8))  # 0.3 MB on disk, 1.2 MB as float32
    _refused(p, r"u8.npy: the array of shape \(300, 1, 32, 32\) as float32 needs 1\.2 MB.*MAX_DATA_MB")
    np.save(p, np.zeros((200, 1, 32, 32), dtype=np.uint8))
    assert len(load_file(p)) == 200


def test_npy_truncated_or_padded(tmp_path):
    p = tmp_path / "cut.npy"
    np.save(p, GREY)
    full = p.read_bytes()
    p.write_bytes(full[:-90])
    _refused(p, exact="cut.npy: could not be read: its header says shape (5, 6, 6) of uint8, 180 bytes of data, but "
                      "90 bytes follow it: it is truncated or corrupt; save the array again with np.save")
    p.write_bytes(full + b"\0" * 7)
    _refused(p, r"180 bytes of data, but 187 bytes follow it: it is truncated or corrupt")
    p.write_bytes(full[:20])
    _refused(p, r"the file ends inside its numpy header; it is truncated")


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"\x93NUMPY\x01\x00" + struct.pack("<H", 40) + b"{'descr': '<f4', 'fortran_order': False,}  \n",
         r"its numpy header is corrupt"),
        (b"\x93NUMPY\x01\x00" + struct.pack("<H", 4000) + b"(" * 3999 + b"\n", r"its numpy header is corrupt"),
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{", r"header claims 4,294,967,295 bytes"),
        (b"\x93NUMPY\x09\x00" + b"\0" * 20, r"numpy format version 9\.0 is unknown"),
        (_npy_bytes({"descr": [("a", "<f4"), ("b", "<i4")], "fortran_order": False, "shape": (2,)}, b"\0" * 16),
         r"structured \(record\) array"),
        (_npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (2, -3)}), r"negative shape \(2, -3\); it is corrupt"),
        (_npy_bytes({"descr": "|O", "fortran_order": False, "shape": (10**9,)}, b"\0" * 8), r"pickled"),
        (_npy_bytes({"descr": "<U4", "fortran_order": False, "shape": (10**9,)}), r"non-numeric values \(<U4\)"),
        (b"\0" * 5, r"could not be read as a numpy file"),
    ],
    ids=["bad-dict", "deep-nesting", "huge-header-length", "unknown-version", "structured", "negative-shape",
         "object", "strings", "short"],
)
def test_odd_npy_headers_refused_without_loading(tmp_path, raw, match):
    p = tmp_path / "odd.npy"
    p.write_bytes(raw)
    _refused(p, r"^odd.npy: .*" + match)


def test_fortran_order_and_big_endian_npy_round_trip(tmp_path):
    p = tmp_path / "f.npy"
    np.save(p, np.asfortranarray(GREY.astype(">f8") / 255))
    assert torch.equal(load_file(p).x, _grey01())


def test_npz_member_lies(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x=GREY, y=np.arange(5))
    data = good.read_bytes()
    info = zipfile.ZipFile(good).getinfo("x.npy")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_patch_central(data, file_size=info.file_size + 50))  # larger than the member holds
    _refused(bad, r"^bad.npz: member 'x.npy': could not be read: its header says shape \(5, 6, 6\) of uint8, "
                  r"180 bytes of data, but 230 bytes follow it: it is truncated or corrupt")
    bad.write_bytes(_patch_central(data, file_size=info.file_size - 50))  # smaller: zipfile stops there, CRC fails
    _refused(bad, exact="bad.npz: member 'x.npy' is corrupt (Bad CRC-32 for file 'x.npy'); make the zip again")
    # A member whose own header claims a huge array, inside a well-formed zip.
    huge = _npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**6, 3, 1000, 1000)}, b"\0" * 8)
    _zip(bad, {"x.npy": huge})
    with pytest.raises(DataLimitError, match=r"member 'x.npy': the array of shape \(1000000, 3, 1000, 1000\) "
                                             r"as float32 needs .*MAX_DATA_MB"):
        load_file(bad)
    _zip(bad, {"x.npy": b"not an array at all"})
    _refused(bad, r"member 'x.npy': could not be read as a numpy file")


def test_npz_declared_size_over_the_file_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_FILE_MB", "1")
    z = tmp_path / "bomb.npz"
    np.savez_compressed(z, x=np.zeros((2000, 32, 32), dtype=np.uint8))  # 2 MB that compresses to a few KB
    _refused(z, exact="bomb.npz (uncompressed) needs 2.0 MB, over the limit of 1 MB; set the environment variable "
                      "VAE_EXPLORER_MAX_FILE_MB (in MB) to raise it")


# ---------------------------------------------------------------- CSV: streamed and checked row by row


def _csv(tmp_path: Path, text: str | bytes, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_ragged_csv_row(tmp_path):
    p = _csv(tmp_path, "a,b,c\n1,2,3\n4,5,6\n7,8\n9,9,9\n")
    _refused(p, exact="d.csv: row 3 has 2 values, expected 3 "
                      "(data rows counted from 1 below the header: line 4 of the file)")
    p = _csv(tmp_path, "1,2,3,4\n\n5,6,7,8,9\n")  # no header; the blank line is skipped, not counted
    _refused(p, exact="d.csv: row 2 has 5 values, expected 4 (line 3 of the file; there is no header row)")


def test_csv_non_number(tmp_path):
    p = _csv(tmp_path, "label,p0,p1,p2,p3\n1,0,1,2,3\n2,0,1,abc,3\n")
    _refused(p, exact="d.csv: row 2, column 4: 'abc' is not a number (data rows counted from 1 below the header: "
                      "line 3 of the file); only the header row and a 'label' or 'y' column may hold non-numeric text")
    _refused(_csv(tmp_path, "1,2,3,4\n1,,3,4\n"), r"row 2, column 2: '' is not a number")


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_csv_field_of_a_megabyte(tmp_path, quoted):
    big = "1" * 2**20
    field = f'"{big}"' if quoted else big
    p = _csv(tmp_path, f"p0,p1,p2,p3\n0,1,2,3\n0,{field},2,3\n")
    msg = _refused(p, r"the limit of 1,024 characters; set the environment variable VAE_EXPLORER_MAX_CSV_FIELD")
    assert ("a value on line 3 is over 131,072 characters" if quoted else "row 2, column 2") in msg
    field = f'"{big[:2000]}"' if quoted else big[:2000]  # under the csv module's own limit, over ours
    _refused(_csv(tmp_path, f"p0,p1,p2,p3\n0,1,2,3\n0,{field},2,3\n"),
             exact="d.csv: the value in row 2, column 2 (data rows counted from 1 below the header: line 3 of the "
                   "file) is 2,000 characters, over the limit of 1,024 characters; set the environment variable "
                   "VAE_EXPLORER_MAX_CSV_FIELD to raise it")
    _refused(_csv(tmp_path, f"{big},p1\n"), r"line 1, column 1 is 1,048,576 characters, over the limit of 1,024")


def test_csv_binary_garbage_and_invalid_utf8(tmp_path):
    garbage = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    _refused(_csv(tmp_path, garbage), r"^d.csv: could not be read as text: it is not UTF-8 \(byte 0x[0-9a-f]{2}: .*\); "
                                      r"save it as a UTF-8 CSV of numbers$")
    _refused(_csv(tmp_path, "1,2,3,4\n5,6,\xff\xfe,8\n".encode("latin-1")), r"it is not UTF-8 \(byte 0xff")
    _refused(_csv(tmp_path, "1,2,3,4\n5,6,\x00\x01,8\n"), r"row 2, column 3: '\\x00\\x01' is not a number")
    _refused(_csv(tmp_path, 'a,b\n"1,2\n'), r"^d.csv: ")  # an unclosed quote: some sentence, never csv.Error


def test_csv_rows_stop_at_the_data_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    p = _csv(tmp_path, "0,1,2,3\n" * 200_000)  # 200,000 rows x 4 values: 3.1 MB as float32
    msg = _refused(p, r"^d.csv: the rows read so far \(([\d,]+) of 4 values\) as float32 needs 1\.0 MB, over the "
                      r"limit of 1 MB; set the environment variable VAE_EXPLORER_MAX_DATA_MB \(in MB\) to raise it$")
    assert int(msg.split("(")[1].split(" ")[0].replace(",", "")) < 70_000  # it stopped early


def test_csv_columns_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MAX_IMAGE_PIXELS", "16")
    _refused(_csv(tmp_path, ",".join(["0"] * 25) + "\n"),
             exact="d.csv: line 1 has 25 values, more than one label and the limit of 16 pixels; set the environment "
                   "variable VAE_EXPLORER_MAX_IMAGE_PIXELS to raise it")
    _refused(_csv(tmp_path, ",".join(["0"] * 17) + "\n"),
             exact="d.csv: each row's image (17 values) is 17 pixels, over the limit of 16 pixels; set the environment "
                   "variable VAE_EXPLORER_MAX_IMAGE_PIXELS to raise it")
    assert load_file(_csv(tmp_path, "label," + ",".join(["p"] * 16) + "\n1," + ",".join(["0"] * 16) + "\n")).shape \
        == (1, 4, 4)


def test_csv_quoted_header_string_labels_and_bom(tmp_path):
    flat = GREY.reshape(5, 36)
    header = '"' + '","'.join([*(f"pixel{i}" for i in range(36)), "y"]) + '"'
    rows = [",".join([*map(str, r), f'"{"cat" if i % 2 else "dog"}"']) for i, r in enumerate(flat)]
    p = _csv(tmp_path, "\ufeff" + "\r\n".join([header, *rows]) + "\r\n")
    d = load_file(p)
    assert torch.equal(d.x, _grey01())
    assert d.y.tolist() == [1, 0, 1, 0, 1] and d.meta["classes"] == ("cat", "dog")


def test_csv_many_rows_exact(tmp_path):
    a = np.random.default_rng(2).integers(0, 256, (5000, 785))  # label first, then 28 x 28 pixels
    a[:, 0] %= 10
    # Written fast with numpy: every value as three digits ("007" is 7), commas, a newline per row.
    text = np.empty((5000, 785, 4), dtype=np.uint8)
    text[..., :3] = np.frombuffer("".join(f"{i:03d}" for i in range(256)).encode(), np.uint8).reshape(256, 3)[a]
    text[..., 3] = ord(",")
    text[:, -1, 3] = ord("\n")
    header = ("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n").encode()
    p = _csv(tmp_path, header + text.tobytes())
    d = load_file(p)  # its speed (about 0.3 s on a quiet 2-core machine) is a benchmark's business, not a test's
    assert torch.equal(d.x, torch.from_numpy(a[:, 1:].astype(np.float32) / 255).reshape(5000, 1, 28, 28))
    assert np.array_equal(d.y, a[:, 0])


# ---------------------------------------------------------------- built-in sets: --n


def test_sprites_n_over_the_budget_refused_before_generating():
    with _allocates_at_most(50), pytest.raises(DataLimitError) as info:
        load_dataset("sprites", n=100_000_000)
    assert str(info.value) == (
        "--n 100,000,000 sprites of 64x64 pixels as float32 needs 1,562,500.0 MB, over the limit of 2,048 MB; "
        "set the environment variable VAE_EXPLORER_MAX_DATA_MB (in MB) to raise it"
    )
    for n in (0, -5):
        with pytest.raises(DataError, match=rf"^--n must be >= 1, got {n}$"):
            load_dataset("sprites", n=n)
    with pytest.raises(DataError, match="--n must be a whole number"):
        load_dataset("digits", n=2.5)


# ---------------------------------------------------------------- every error is a DataError sentence


@pytest.mark.parametrize(
    "exc",
    [RecursionError("maximum recursion depth exceeded"), TypeError("odd"), MemoryError(), OverflowError("big"),
     csv.Error("bad"), zipfile.BadZipFile("bad"), zlib.error("bad"), struct.error("bad"), EOFError(),
     UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), UnidentifiedImageError("no"), KeyError("k"),
     LimitError("VAE_EXPLORER_MAX_DATA_MB='x' is not a number"), Exception("anything")],
    ids=lambda e: type(e).__name__,
)
def test_anything_a_loader_raises_becomes_a_data_error(tmp_path, monkeypatch, exc):
    def loader(path, max_bytes):
        raise exc

    monkeypatch.setitem(data_files._LOADERS, ".npy", loader)
    p = tmp_path / "x.npy"
    p.write_bytes(b"")
    msg = _refused(p)
    assert msg.startswith("x.npy: ") or isinstance(exc, LimitError), msg


# ---------------------------------------------------------------- good files of each kind still load exactly


def test_good_files_of_every_kind_load_exactly(tmp_path):
    np.save(tmp_path / "a.npy", GREY)
    np.savez_compressed(tmp_path / "b.npz", x=GREY, y=np.arange(5))
    np.savetxt(tmp_path / "c.csv", GREY.reshape(5, 36), fmt="%d", delimiter=",")
    root = tmp_path / "imgs"
    root.mkdir()
    for i, a in enumerate(GREY):
        (root / f"{i}.png").write_bytes(_png(a))
    _zip(tmp_path / "e.zip", {f"{i}.png": _png(a) for i, a in enumerate(GREY)})
    for name in ("a.npy", "b.npz", "c.csv", "imgs", "e.zip"):
        d = load_file(tmp_path / name)
        assert torch.equal(d.x, _grey01()), name
    assert load_file(tmp_path / "b.npz").y.tolist() == [0, 1, 2, 3, 4]

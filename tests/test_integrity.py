"""Damaged artefacts are noticed: a frozen graph or IR that changed since it was made is made again
and said so (or refused with the command that remakes it), a damaged checkpoint is one line.

The slow tests damage copies of the session's mobilenet_v1_025_128 files (the cheapest model) in a
private workspace, never the shared ones.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from omzconv import integrity
from omzconv.cli import main
from omzconv.errors import DamagedCheckpointError
from omzconv.fileutil import file_digest, read_json
from omzconv.integrity import changed, stamp
from omzconv.workspace import Workspace

NAME = "mobilenet_v1_025_128"


# --- the check itself (no TensorFlow) ------------------------------------------------------------


def _made(path: Path, data: bytes) -> dict:
    path.write_bytes(data)
    return {"sha256": "sha256:" + file_digest(path), "stamp": stamp([path])}


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_unchanged_file_is_not_read_again(tmp_path, monkeypatch):
    meta = _made(tmp_path / "g.pb", b"graph bytes")
    monkeypatch.setattr(integrity, "file_digest", lambda paths: pytest.fail("re-hashed a stamped file"))
    assert changed([tmp_path / "g.pb"], meta) is None


def test_touched_file_is_hashed_and_passes(tmp_path):
    meta = _made(tmp_path / "g.pb", b"graph bytes")
    _bump_mtime(tmp_path / "g.pb")
    assert changed([tmp_path / "g.pb"], meta) is None


def test_truncated_edited_missing_files_say_why(tmp_path):
    pb = tmp_path / "g.pb"
    meta = _made(pb, b"graph bytes")
    pb.write_bytes(b"graph")
    assert changed([pb], meta) == "g.pb is 5 bytes, was 11"
    pb.write_bytes(b"graph BYTES")  # same size, new mtime
    _bump_mtime(pb)
    reason = changed([pb], meta)
    assert reason.startswith("sha256 ") and reason.endswith(f", was {meta['sha256'][7:19]}…"), reason
    pb.unlink()
    assert changed([pb], meta) == "g.pb is missing"


def test_several_files_and_old_sidecars(tmp_path):
    xml, bin_ = tmp_path / "m.xml", tmp_path / "m.bin"
    xml.write_bytes(b"<net/>")
    bin_.write_bytes(b"\0" * 100)
    meta = {"sha256": "sha256:" + file_digest([xml, bin_]), "stamp": stamp([xml, bin_])}
    bin_.write_bytes(b"\0" * 60)
    assert changed([xml, bin_], meta) == "m.bin is 60 bytes, was 100"
    # a sidecar from before stamps: a single file's "size", else the hash alone
    assert changed([bin_], {"sha256": "sha256:x", "size": 100}) == "m.bin is 60 bytes, was 100"
    bin_.write_bytes(b"\0" * 100)
    assert changed([xml, bin_], {"sha256": meta["sha256"]}) is None


# --- frozen graphs and IRs in a private copy of the session's files ---------------------------


@pytest.fixture
def own(artefacts, tmp_path):
    """(model, workspace): a synthetic workspace holding copies (mtimes kept) of the session's
    mobilenet_v1_025_128 archive, extracted checkpoint, frozen graph and FP32 IR."""
    model = artefacts.model(NAME)
    artefacts.ir(NAME, "FP32")
    shared, ws = artefacts.workspace, Workspace(tmp_path / "cache", tmp_path / "out", synthetic=True)
    shutil.copytree(shared.download_dir(model), ws.download_dir(model), ignore=shutil.ignore_patterns("*.lock"))
    shutil.copytree(shared.model_dir(model), ws.model_dir(model),
                    ignore=shutil.ignore_patterns("*.lock", "FP16*", "INT8*", "FP32-*"))
    return model, ws


def _checkpoint(artefacts) -> Path:
    """The session's synthetic mobilenet_v1_025_128 checkpoint (its archive also holds the graph)."""
    artefacts.checkpoint(NAME)
    return artefacts.workspace.checkpoint_path(artefacts.model(NAME))


def _convert(model, ws, registry):
    from omzconv.pipeline import ensure_converted

    return ensure_converted(model, ws, registry, "FP32")


def test_truncated_frozen_graph_is_made_again_and_said(own, registry, caplog):
    model, ws = own
    pb = ws.frozen_path(model)
    original = pb.read_bytes()
    pb.write_bytes(original[: len(original) // 2])
    with caplog.at_level(logging.WARNING, logger="omzconv"):
        result = _convert(model, ws, registry)
    assert f"frozen graph {pb} changed since it was made ({pb.name} is {len(original) // 2} bytes, " \
           f"was {len(original)}): adopting the authors' graph again" in caplog.messages
    assert pb.read_bytes() == original
    assert result.skipped  # the graph is byte-identical again, so its IR is still up to date


def test_edited_frozen_graph_is_not_converted(own, registry, caplog):
    model, ws = own
    pb = ws.frozen_path(model)
    original = pb.read_bytes()
    edited = bytearray(original)
    edited[len(edited) // 2] ^= 0x01  # a weight's low bit: still a valid graph, same size
    pb.write_bytes(bytes(edited))
    with caplog.at_level(logging.WARNING, logger="omzconv"):
        result = _convert(model, ws, registry)
    [message] = [m for m in caplog.messages if "changed since it was made" in m]
    assert message.startswith(f"frozen graph {pb} changed since it was made (sha256 "), message
    assert pb.read_bytes() == original and result.skipped
    recipe = read_json(result.path.parent / "omzconv.json")["recipe"]
    assert recipe["source_sha256"] == "sha256:" + file_digest(pb)


def test_intact_graph_gets_its_stamp_renewed(own, registry, monkeypatch):
    from omzconv.freeze import sidecar_path
    from omzconv.pipeline import ensure_graph

    model, ws = own
    pb = ws.frozen_path(model)
    _bump_mtime(pb)  # e.g. copied without keeping mtimes: hashed once, then trusted by its stamp
    assert ensure_graph(model, ws)[1] == read_json(sidecar_path(pb))["sha256"]
    assert read_json(sidecar_path(pb))["stamp"] == stamp([pb])
    monkeypatch.setattr(integrity, "file_digest", lambda paths: pytest.fail("re-hashed an intact graph"))
    assert ensure_graph(model, ws)[0] == pb


def test_truncated_ir_bin_is_made_again_and_said(own, registry, caplog):
    model, ws = own
    xml = ws.ir_path(model, "FP32")
    bin_ = xml.with_suffix(".bin")
    original = bin_.read_bytes()
    bin_.write_bytes(original[:1000])
    with caplog.at_level(logging.WARNING, logger="omzconv"):
        result = _convert(model, ws, registry)
    assert (f"IR {xml} changed since it was made ({bin_.name} is 1000 bytes, was {len(original)}): "
            "making it again") in caplog.messages
    assert not result.skipped and result.check.passed and bin_.read_bytes() == original


def test_quantize_remakes_a_damaged_fp32_ir_first(own, registry, shared_dir, caplog):
    from omzconv.quantize import ensure_quantized, load_calibration_source

    model, ws = own
    fp32_bin = ws.ir_path(model, "FP32").with_suffix(".bin")
    original = fp32_bin.read_bytes()
    fp32_bin.write_bytes(original[:-4])
    source = load_calibration_source(registry, "imagenet-val", shared_dir / "imagenet-sample")
    with caplog.at_level(logging.WARNING, logger="omzconv"):
        result = ensure_quantized(model, ws, registry, source, calibration_size=8, check_images=0)
    assert any(m.startswith(f"IR {ws.ir_path(model, 'FP32')} changed since it was made ({fp32_bin.name} is "
                            f"{len(original) - 4} bytes") for m in caplog.messages), caplog.messages
    assert fp32_bin.read_bytes() == original and result.path.is_file()
    assert result.source_sha256 == "sha256:" + file_digest([ws.ir_path(model, "FP32"), fp32_bin])


def test_graph_from_a_given_checkpoint_is_refused_with_the_remedy(artefacts, tmp_path):
    """A graph frozen from the user's --checkpoint cannot be remade by omzconv alone: one line
    saying why and the command that remakes it; that command works."""
    checkpoint = tmp_path / "mine.ckpt"
    shutil.copy2(_checkpoint(artefacts), checkpoint)
    root = ["--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out"), "-q"]
    run = CliRunner().invoke
    assert run(main, [*root, "freeze", NAME, "--checkpoint", str(checkpoint)]).exit_code == 0
    pb = tmp_path / "out" / NAME / f"{NAME}.frozen.pb"
    size = pb.stat().st_size
    pb.write_bytes(pb.read_bytes()[:100])
    result = run(main, [*root, "convert", NAME, "-p", "FP32"])
    assert result.exit_code == 1
    remedy = f"omzconv freeze {NAME} --checkpoint {checkpoint} --force"
    assert result.output.strip() == (
        f"Error: frozen graph {pb} changed since it was made ({pb.name} is 100 bytes, was {size}) and omzconv "
        f"cannot make it again by itself: it was frozen from the checkpoint {checkpoint} you gave; "
        f"run `{remedy}`")
    assert run(main, [*root, *remedy.split()[1:]]).exit_code == 0 and pb.stat().st_size == size


# --- a damaged checkpoint ------------------------------------------------------------------------


def test_damaged_checkpoint_body_is_one_line(artefacts, tmp_path):
    """Footer and index intact, body corrupt: TensorFlow's 170-line "mismatch between the current
    graph and the checkpoint" becomes one line naming the damage and the recovery."""
    data = bytearray(_checkpoint(artefacts).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["--cache-dir", str(tmp_path / "c"), "-o", str(tmp_path / "o"), "-q",
                                       "freeze", NAME, "--checkpoint", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: checkpoint {bad} is damaged: its variables are listed but their values cannot be read "
        "(Error copying slice data); replace it with an intact copy")
    assert not list((tmp_path / "o").rglob("*.pb"))


def test_damaged_checkpoint_error_type(artefacts, tmp_path):
    from omzconv.freeze import freeze

    data = bytearray(_checkpoint(artefacts).read_bytes())
    data[-5000:-4000] = b"\0" * 1000
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpointError, match=r"is damaged: .*\(Error copying slice data\)$"):
        freeze(artefacts.model(NAME), bad, tmp_path / "x.pb")
    assert not (tmp_path / "x.pb").exists()


def test_damaged_extracted_checkpoint_names_the_folder_to_delete(own, tmp_path):
    """The workspace's own checkpoint (a registry saying `source: checkpoint` for this model):
    the error names the extracted folder; deleting it, as told, recovers."""
    import dataclasses

    from omzconv.pipeline import ensure_frozen

    model, ws = own
    model = dataclasses.replace(model, source="checkpoint")
    ckpt = ws.checkpoint_path(model)
    intact = ckpt.read_bytes()
    ckpt.write_bytes(intact[:len(intact) // 2] + bytes(64) + intact[len(intact) // 2 + 64:])
    with pytest.raises(DamagedCheckpointError) as info:
        ensure_frozen(model, ws)
    assert str(info.value).endswith(
        f"(Error copying slice data); delete {ws.checkpoint_dir(model)} and run again to extract it anew "
        "from its archive")
    shutil.rmtree(ws.checkpoint_dir(model))
    result = ensure_frozen(model, ws)
    assert ckpt.read_bytes() == intact and not result.skipped and result.path.is_file()

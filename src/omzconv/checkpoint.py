"""A TensorFlow checkpoint: its files, what it is when it is not one, its hash, its variables
against a network's, and the restore — each failure one CheckpointError line.

A V1 single file (`model.ckpt`) or a V2 prefix (`model.ckpt.index` + `.data-*`). Its table footer
is checked before TensorFlow loads; names and shapes before anything is restored; so a restore that
still fails means damaged data (DamagedCheckpointError), not a network that does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omzconv.errors import CheckpointError, DamagedCheckpointError
from omzconv.fileutil import file_digest

MAX_NAMED = 20  # variables named in a mismatch error before "… and N more"
# Footer of the sorted-string table a V1 checkpoint and a V2 .index file both are (LevelDB's magic).
TABLE_MAGIC = bytes.fromhex("57fb808b247547db")


def checkpoint_files(path: Path) -> tuple[Path, list[Path]]:
    """The prefix to restore from and the files that make up the checkpoint.

    Accepts a V1 single file (`model.ckpt`) or a V2 checkpoint by prefix (`model.ckpt`, with
    `model.ckpt.index` and `model.ckpt.data-*` beside it) or by its `.index` file.
    """
    path = Path(path)
    if path.suffix == ".index":
        path = path.with_suffix("")
    if ".data-" in path.name:
        prefix = path.name.split(".data-")[0]
        raise CheckpointError(f"{path} is the data part of a V2 checkpoint; pass its prefix "
                              f"{path.with_name(prefix)} (or {prefix}.index)")
    index = path.with_name(path.name + ".index")
    if index.is_file():
        data = sorted(path.parent.glob(path.name + ".data-*"))
        if not data:
            raise CheckpointError(f"{index} has no {path.name}.data-* file beside it")
        _check_table(index)
        return path, [index, *data]
    if path.is_file():
        _check_table(path)
        return path, [path]
    raise CheckpointError(f"no checkpoint at {path} (expected a V1 file, or a V2 prefix with .index/.data)")


def _check_table(path: Path) -> None:
    """Raise CheckpointError saying what `path` is when it is not a checkpoint table (read its first
    and last bytes only: a wrong file fails at once, not after TensorFlow has loaded)."""
    with open(path, "rb") as f:
        head = f.read(512)
        f.seek(max(0, f.seek(0, 2) - len(TABLE_MAGIC)))
        if f.read() == TABLE_MAGIC:
            return
    kinds = [
        (head[:2] == b"\x1f\x8b", "a gzip archive (.tar.gz?): extract it and pass the .ckpt inside"),
        (head[257:262] == b"ustar", "a tar archive: extract it and pass the .ckpt inside"),
        (head[:4] == b"PK\x03\x04", "a zip archive: extract it and pass the .ckpt inside"),
        (head.lstrip().startswith(b"<?xml") or b"<net " in head,
         "an OpenVINO IR: it is already converted; `omzconv verify` and `omzconv benchmark` take IRs"),
        (path.suffix in (".pb", ".pbtxt"),
         "a TensorFlow graph, not a checkpoint: pass the checkpoint it was made from (model.ckpt, or the "
         "prefix of model.ckpt.index/.data-*)"),
        (path.suffix == ".meta", "a MetaGraph (.meta), not the weights: pass the checkpoint beside it, "
         f"{path.with_suffix('')}"),
    ]
    what = next((text for matches, text in kinds if matches),
                "not a TensorFlow checkpoint (a V1 .ckpt file or a V2 .index/.data-* prefix)")
    raise CheckpointError(f"{path} is {what}")


def checkpoint_digest(path: Path) -> str:
    _, files = checkpoint_files(path)
    return "sha256:" + file_digest(files)


def restore(saver: Any, sess: Any, prefix: Path) -> None:
    """`saver.restore`, with TensorFlow's errors (DataLossError, InvalidArgumentError,
    NotFoundError, …: pages of traceback blaming "a mismatch between the current graph and the
    checkpoint") as one DamagedCheckpointError. `check_checkpoint` has already matched every name
    and shape, so what fails here is the checkpoint's data."""
    from omzconv.tfcompat import import_tf

    try:
        saver.restore(sess, str(prefix))
    except import_tf().errors.OpError as exc:
        raise DamagedCheckpointError(f"checkpoint {prefix} is damaged: its variables are listed but their "
                                     f"values cannot be read ({_tf_reason(exc)})") from exc


def _tf_reason(exc: Exception) -> str:
    """TensorFlow's own reason (e.g. "Error copying slice data"), without the advice a Saver wraps
    around it, the graph-execution header, the stack of where the op was defined and the node name."""
    text = str(getattr(exc, "message", "") or exc).split("Original error:", 1)[-1]
    noise = ("Graph execution error", "Detected at node", "Node:", "[[")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line[:1].isspace() and not line.strip().startswith(noise)]
    return lines[-1] if lines else type(exc).__name__


def check_checkpoint(prefix: Path, expected: dict[str, list[int]], model_name: str) -> None:
    """Raise CheckpointError naming every network variable missing from, or mis-shaped in, the
    checkpoint. Extra variables in the checkpoint (e.g. global_step) are fine."""
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    try:
        reader = tf.train.NewCheckpointReader(str(prefix))
    except Exception as exc:  # DataLossError/NotFoundError/...: its table footer was fine, its body is not
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedCheckpointError(f"cannot read checkpoint {prefix}: {first_line}") from exc
    stored = reader.get_variable_to_shape_map()
    problems = []
    for name, shape in expected.items():
        if name not in stored:
            problems.append(f"{name} missing")
        elif list(stored[name]) != shape:
            problems.append(f"{name} has shape {list(stored[name])}, the network needs {shape}")
    if problems:
        shown = "; ".join(problems[:MAX_NAMED])
        more = f"; … and {len(problems) - MAX_NAMED} more" if len(problems) > MAX_NAMED else ""
        raise CheckpointError(
            f"checkpoint {prefix} does not fit {model_name}: {len(problems)} of {len(expected)} "
            f"variables wrong: {shown}{more}")

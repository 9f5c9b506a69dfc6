"""Where omzconv keeps what it downloads and what it makes.

Downloads (checkpoint archives and their extracted contents) go to the cache directory, shared by
every project of the user; artefacts (frozen graphs, IRs, reports) go to the output directory.
Synthetic-weight artefacts live in their own `synthetic/` subtree of both, never beside real ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omzconv.fileutil import file_digest, read_json
from omzconv.registry import Model

CACHE_ENV = "OMZCONV_CACHE_DIR"
OUTPUT_ENV = "OMZCONV_OUTPUT_DIR"
DEFAULT_OUTPUT = Path("omzconv-out")
SIDECAR = "omzconv.json"  # beside every IR omzconv writes: what it was made from, its hash


def default_cache_dir() -> Path:
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("omzconv", appauthor=False))


def default_output_dir() -> Path:
    return Path(os.environ.get(OUTPUT_ENV) or DEFAULT_OUTPUT)


@dataclass(frozen=True)
class Workspace:
    cache_dir: Path
    output_dir: Path
    synthetic: bool = False

    def _flavour(self, root: Path) -> Path:
        return root / "synthetic" if self.synthetic else root

    def download_dir(self, model: Model) -> Path:
        """Where the checkpoint archive of `model` is stored."""
        return self._flavour(self.cache_dir) / model.name

    def archive_path(self, model: Model) -> Path:
        return self.download_dir(model) / model.files[0].name

    def checkpoint_dir(self, model: Model) -> Path:
        """Where the archive is extracted."""
        return self.download_dir(model) / "checkpoint"

    def checkpoint_path(self, model: Model) -> Path:
        """The checkpoint the archive holds (the extraction directory if it holds none)."""
        return self.checkpoint_dir(model) / model.checkpoint

    def source_path(self, model: Model) -> Path:
        """What the pipeline starts from: the extracted checkpoint, or the authors' frozen graph."""
        return self.checkpoint_dir(model) / model.source_member

    def model_dir(self, model: Model) -> Path:
        return self._flavour(self.output_dir) / model.name

    def frozen_path(self, model: Model) -> Path:
        return self.model_dir(model) / f"{model.name}.frozen.pb"

    def ir_path(self, model: Model, precision: str) -> Path:
        return self.model_dir(model) / precision / f"{model.name}.xml"

    def status(self, model: Model) -> dict[str, object]:
        """What exists for `model`: files are only ever renamed into place once verified."""
        precisions = ("FP32", "FP16", "INT8")
        return {
            "downloaded": self.archive_path(model).is_file(),
            "frozen": self.frozen_path(model).is_file(),
            "converted": [p for p in precisions if self.ir_path(model, p).is_file()],
        }


# --- IR files ------------------------------------------------------------------------------------


def ir_files(xml_path: Path) -> tuple[Path, Path]:
    return xml_path, xml_path.with_suffix(".bin")


def ir_size(xml_path: Path) -> int:
    return sum(p.stat().st_size for p in ir_files(xml_path))


def current_sidecar(xml_path: Path, recipe: dict) -> dict | None:
    """The IR's sidecar when the IR exists, is intact and was made from `recipe`; else None.

    convert and quantize both decide "up to date" with it."""
    meta = read_json(xml_path.parent / SIDECAR)
    if not meta or meta.get("recipe") != recipe or not all(p.is_file() for p in ir_files(xml_path)):
        return None
    return meta if meta.get("sha256") == "sha256:" + file_digest(ir_files(xml_path)) else None

"""Where omzconv keeps what it downloads and what it makes.

Downloads (checkpoint archives and their extracted contents) go to the cache directory, shared by
every project of the user; artefacts (frozen graphs, IRs, reports) go to the output directory.
Synthetic-weight artefacts live in their own `synthetic/` subtree of both, never beside real ones.

Every path omzconv creates, replaces or deletes is built here and checked here (`Workspace.inside`):
resolved, it must lie strictly under the cache or the output directory, whatever a model's name or
any other field of models.yaml says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omzconv.errors import PathError
from omzconv.fileutil import read_json
from omzconv.registry import PRECISIONS, Model

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

    def inside(self, root: Path, *parts: str) -> Path:
        """`root / parts...`, checked: its folder resolved (symbolic links, '..'), it must lie strictly
        under `root` resolved, else PathError. Every path builder below goes through here.

        The last component is not followed: writing, replacing or deleting a path acts on a link
        there, never on what it points to (a user's symlinked IR file is read through, not escaped)."""
        path = root.joinpath(*parts)
        try:
            top, resolved = root.resolve(), Path(os.path.normpath(path.parent.resolve() / path.name))
        except (OSError, RuntimeError) as exc:
            raise PathError(f"cannot resolve {path}: {exc}") from exc
        if top not in resolved.parents:
            raise PathError(f"refusing {path}: it lies outside {root}, and omzconv creates, replaces and deletes "
                            "only under its cache and output directories")
        return path

    def download_dir(self, model: Model) -> Path:
        """Where the checkpoint archive of `model` is stored."""
        return self.inside(self._flavour(self.cache_dir), model.name)

    def archive_path(self, model: Model) -> Path:
        return self.inside(self._flavour(self.cache_dir), model.name, model.files[0].name)

    def checkpoint_dir(self, model: Model) -> Path:
        """Where the archive is extracted."""
        return self.inside(self._flavour(self.cache_dir), model.name, "checkpoint")

    def checkpoint_path(self, model: Model) -> Path:
        """The checkpoint the archive holds (the extraction directory if it holds none)."""
        return self.inside(self._flavour(self.cache_dir), model.name, "checkpoint", model.checkpoint)

    def source_path(self, model: Model) -> Path:
        """What the pipeline starts from: the extracted checkpoint, or the authors' frozen graph."""
        return self.inside(self._flavour(self.cache_dir), model.name, "checkpoint", model.source_member)

    def model_dir(self, model: Model) -> Path:
        return self.inside(self._flavour(self.output_dir), model.name)

    def frozen_path(self, model: Model) -> Path:
        return self.inside(self._flavour(self.output_dir), model.name, f"{model.name}.frozen.pb")

    def ir_path(self, model: Model, precision: str, variant: str = "") -> Path:
        """`<out>/<name>/FP32/<name>.xml`; an IR with another input interface (see `ir_variant`)
        lives apart, e.g. `<out>/<name>/FP32-u8-nhwc/<name>.xml`."""
        folder = f"{precision}-{variant}" if variant else precision
        return self.inside(self._flavour(self.output_dir), model.name, folder, f"{model.name}.xml")

    def status(self, model: Model) -> dict[str, object]:
        """What exists for `model`: files are only ever renamed into place once verified."""
        model_dir = self.model_dir(model)
        converted = sorted((p.parent.name for p in model_dir.glob(f"*/{model.name}.xml")),
                           key=lambda name: (PRECISIONS.index(name.split("-")[0]) if name.split("-")[0] in PRECISIONS
                                             else len(PRECISIONS), name))
        return {
            "downloaded": self.archive_path(model).is_file(),
            "frozen": self.frozen_path(model).is_file(),
            "converted": converted,
        }


def ir_variant(model: Model, input_type: str | None = None, layout: str | None = None) -> str:
    """'' for the IR input models.yaml declares; else what differs from it, e.g. 'u8', 'nhwc',
    'u8-nhwc': the name that keeps IRs with different interfaces apart."""
    declared = model.converted_input
    parts = [input_type] if input_type and input_type != declared.element_type else []
    if layout and layout != declared.layout:
        parts.append(layout.lower())
    return "-".join(parts)


# --- IR files ------------------------------------------------------------------------------------


def ir_files(xml_path: Path) -> tuple[Path, Path]:
    return xml_path, xml_path.with_suffix(".bin")


def ir_size(xml_path: Path) -> int:
    return sum(p.stat().st_size for p in ir_files(xml_path))


def current_sidecar(xml_path: Path, recipe: dict) -> dict | None:
    """The IR's sidecar when the IR exists, is intact and was made from `recipe`; else None.

    convert and quantize both decide "up to date" with it; an IR made from `recipe` whose files
    changed since (`omzconv.integrity`: stamp, else sha256) is said on stderr."""
    from omzconv.integrity import unchanged

    meta = read_json(xml_path.parent / SIDECAR)
    if not meta or meta.get("recipe") != recipe:
        return None
    return meta if unchanged(ir_files(xml_path), meta, f"IR {xml_path}", "making it again") else None

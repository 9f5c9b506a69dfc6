"""The prediction cache: what each artefact predicted for each image, in sqlite, so an interrupted
run resumes and a repeated one costs nothing.

What the cache stores, and why not the probability vectors. Per run (frozen graph or IR, by
sha256 — and an IR's execution precision, `Artefact.identity`) and image (absolute path, size,
mtime): the top-5 class ids and their probabilities,
≈ 100 bytes. Per (IR, original) pair and image: max and sum of |Δ prob| over the classes,
computed while both vectors are in memory. That is everything the report needs: accuracy and
agreement from the top-5 ids, max / mean |Δ prob| from the pair rows — 10 MB per artefact for
50,000 images instead of 200 MB of float32 vectors (float16 vectors would be 100 MB and too coarse:
their rounding, up to 1e-4 at p = 0.4, exceeds the FP32 conversion's own |Δ| of ~1e-5). The price:
an IR that is new against a cached original re-runs the original on the images it needs, to
have its vectors. Two exceptions keep a Ctrl-C cheap: each prediction row also keeps the stage
time its image took (so a cached result still has a measured speed), and the probability vectors of
a run whose dependants were interrupted on an image are kept (`vectors`) until they have finished
it, so a resumed run does not run the original again for them.

The cache is only a cache: a file sqlite cannot read is moved aside (`*.corrupt`) with a warning and
rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from omzconv.registry import Model
from omzconv.verify.artefacts import Artefact
from omzconv.verify.metrics import TOP_K
from omzconv.verify.report import SCHEMA
from omzconv.workspace import Workspace

log = logging.getLogger(__name__)
_TABLES = ("CREATE TABLE IF NOT EXISTS predictions (image TEXT PRIMARY KEY, top BLOB, prob BLOB, seconds REAL);"
           "CREATE TABLE IF NOT EXISTS deltas (image TEXT, reference TEXT, max REAL, sum REAL,"
           " PRIMARY KEY (image, reference));"
           "CREATE TABLE IF NOT EXISTS vectors (image TEXT PRIMARY KEY, prob BLOB);")


def image_key(path: Path) -> str:
    """An image's identity for the cache: its absolute path, size and modification time."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class PredictionCache:
    """One artefact's predictions in sqlite: top-5 ids and probabilities per image, and per
    (image, reference artefact) the max and sum of |Δ prob|. Committed after every chunk, so a
    crash loses at most the chunk in flight."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.OperationalError:  # locked, unreadable: not the file's content
            raise
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(path.name + ".corrupt")
            log.warning("%s: unreadable verify cache (%s), moved to %s; rebuilding it", path, exc, aside.name)
            path.replace(aside)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path) if self.path is not None else ":memory:")
        try:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            db.executescript(_TABLES)
            if "seconds" not in {row[1] for row in db.execute("PRAGMA table_info(predictions)")}:
                db.execute("ALTER TABLE predictions ADD COLUMN seconds REAL")  # a cache from before timings
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @classmethod
    def for_artefact(cls, cache_dir: Path | None, artefact: Artefact, output: str, model: Model) -> PredictionCache:
        """The artefact's cache file under `cache_dir` (None: memory only, for --no-cache). The name
        hashes everything that decides a prediction besides the image: the artefact's bytes and,
        for an IR not pinned to f32, the execution precision asked and obtained (`Artefact.identity`),
        the output read, the preprocessing."""
        if cache_dir is None:
            return cls(None)
        pre = model.preprocessing
        recipe = f"{artefact.identity} {output} {pre.central_fraction} {pre.size} {TOP_K} v{SCHEMA}"
        if pre.recipe != "inception":
            recipe += f" {pre.recipe} {pre.resize_side}"
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        return cls(cache_dir / f"{artefact.sha256.removeprefix('sha256:')[:16]}-{digest}.sqlite")

    def predictions(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray, float | None]]:
        """Per image: top-5 ids, their probabilities, and the stage seconds it took (None: not kept)."""
        wanted = set(keys)
        rows = self.db.execute("SELECT image, top, prob, seconds FROM predictions")
        return {k: (np.frombuffer(t, np.int16).astype(np.int64), np.frombuffer(p, np.float32), s)
                for k, t, p, s in rows if k in wanted}

    def deltas(self, keys: Sequence[str], reference: str) -> dict[str, tuple[float, float]]:
        wanted = set(keys)
        rows = self.db.execute("SELECT image, max, sum FROM deltas WHERE reference = ?", (reference,))
        return {k: (m, s) for k, m, s in rows if k in wanted}

    def vectors(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The probability vectors kept for dependants that have not finished these images."""
        wanted = set(keys)
        return {k: np.frombuffer(p, np.float32) for k, p in self.db.execute("SELECT image, prob FROM vectors")
                if k in wanted}

    def put(self, keys: Sequence[str], top: np.ndarray, prob: np.ndarray, seconds: float | None = None) -> None:
        """Each image's top-5 and probabilities; `seconds`: the stage time of each image."""
        self.db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?)",
                            [(k, t.astype(np.int16).tobytes(), p.astype(np.float32).tobytes(), seconds)
                             for k, t, p in zip(keys, top, prob)])

    def put_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                            [(k, np.asarray(v, np.float32).tobytes()) for k, v in vectors.items()])

    def drop_vectors(self, keys: Sequence[str]) -> None:
        self.db.executemany("DELETE FROM vectors WHERE image = ?", [(k,) for k in keys])

    def put_deltas(self, keys: Sequence[str], reference: str, dmax: np.ndarray, dsum: np.ndarray) -> None:
        self.db.executemany("INSERT OR REPLACE INTO deltas VALUES (?, ?, ?, ?)",
                            [(k, reference, float(m), float(s)) for k, m, s in zip(keys, dmax, dsum)])

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()


def cache_dir_for(workspace: Workspace, model: Model) -> Path:
    """`<output-dir>/cache/verify` (under `synthetic/` for synthetic weights)."""
    return workspace.model_dir(model).parent / "cache" / "verify"

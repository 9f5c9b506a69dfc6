"""Before and after `convert -p FP16 --keep-precision auto`, on synthetic weights and held-out sample images.

For each model, through omzconv's CLI (`python -m omzconv`, one process per step, one at a time):

1. `convert -p FP32,FP16,INT8 --keep-precision none --data-dir SAMPLE` — the plain IRs (INT8: NNCF
   on SAMPLE's calibration split, as `convert` does it).
2. `convert -p FP16 --keep-precision auto --data-dir SAMPLE` against the shipped models.yaml: the
   repair splits SAMPLE into ranking and held-out images (disjoint) and records both in the IR's
   sidecar. The held-out images it names become a data directory of their own (symlinks + val.txt).
3. `verify -p FP32,FP16,INT8 --inference-precision f32,bf16` on that directory: "before" (the FP16
   IR is the plain one — checked: its .bin is byte-identical unless the shipped tolerance made the
   repair keep something). INT8 is measured only on those of them that did not calibrate it, as
   verify always does.
4. The same repair against a copy of models.yaml whose FP16 `max_prob_delta` is tightened (TIGHT,
   as in benchmarks/keep_precision.py) so that the plain IR fails it and something is kept.
5. `verify -p FP16 --inference-precision f32,bf16` on the same held-out images with that copy of
   models.yaml (with the shipped one verify would find the IR stale and repair it again): "after".

Verdicts are verify's, by the models.yaml each verify ran with (the tightened row's "before": the
repair's own judge of the plain IR on the same images, by the tightened tolerance). Speed is the
repair record's: the repaired IR's throughput ÷ the plain FP16 IR's (`--speed-seconds` per loop).
Printed: the CPU's flags, OpenVINO's version, what an f32 IR is computed in by default here, and
one table (≤ 100 columns) per model.

    python benchmarks/precision_table.py [NAME ...] [--workdir /tmp/omzconv-table] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIGHT = {"inception_v4": 2e-3, "mobilenet_v1_025_128": 5e-3}  # FP16 max |Δp| the plain IRs fail
SHIPPED_FP16 = "FP16: {top1_pp: 0.3, max_prob_delta: 0.1,"
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16")


def cpu_line() -> str:
    text = Path("/proc/cpuinfo").read_text().splitlines()
    name = next((x.split(":", 1)[1].strip() for x in text if x.startswith("model name")), "?")
    flags = set(next((x.split(":", 1)[1].split() for x in text if x.startswith("flags")), []))
    return f"CPU: {name}; " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS)


def omzconv(args: argparse.Namespace, *argv: str, models: Path | None = None) -> str:
    """Run `python -m omzconv` (this checkout's src first on the path); its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "omzconv", "-q", "--models", str(models or ROOT / "models.yaml"),
           "-o", str(args.workdir / "out"), *argv]
    print(f"$ omzconv {' '.join(cmd[4:])}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1) or not done.stdout.strip():  # verify exits 1 when a run fails
        sys.exit(f"omzconv {' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def repair(args, name: str, models: Path) -> dict:
    out = json.loads(omzconv(args, "convert", name, "--synthetic-weights", "-p", "FP16", "--keep-precision", "auto",
                             "--force", "--data-dir", str(args.data_dir), "--repair-images", str(args.ranking),
                             "--held-out-images", str(args.held_out), "--speed-seconds", str(args.speed_seconds),
                             "--json", models=models))
    return next(r for r in out if Path(r["path"]).parent.name == "FP16")


def held_out_dir(args, name: str, keys: list[str]) -> Path:
    """A data directory (Caffe layout) of the held-out images only, linked to SAMPLE's files."""
    labels = dict(line.split() for line in (args.data_dir / "val.txt").read_text().splitlines() if line.strip())
    root = args.workdir / "held-out" / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "ILSVRC2012_img_val").mkdir(parents=True)
    for key in keys:
        (root / "ILSVRC2012_img_val" / key).symlink_to(args.data_dir / "ILSVRC2012_img_val" / key)
    (root / "val.txt").write_text("".join(f"{k} {labels[k]}\n" for k in keys))
    return root


def verify(args, name: str, data: Path, precisions: str, tag: str, models: Path | None = None) -> dict[str, dict]:
    """run name (FP32, FP32@bf16, …) → its JSON result."""
    report = args.workdir / "reports" / f"{name}-{tag}.json"
    omzconv(args, "verify", name, "--synthetic-weights", "--data-dir", str(data), "-p", precisions,
            "--inference-precision", "f32,bf16", "--no-diff", "--no-cache", "--report", str(report), "--json",
            models=models)
    model = next(m for m in json.loads(report.read_text())["models"] if m["model"] == name)
    runs = {}
    for r in model["runs"]:
        if r["runtime"] != "openvino":
            continue
        c = next(c for c in model["comparisons"] if c["precision"] == r["name"] and c["reference"] == "original")
        checks = [k for k in model["checks"] if k["subject"].startswith(f"{r['name']} vs original")]
        runs[r["name"]] = {"images": c["images"], "top1_agreement": c["top1_agreement"],
                           "max_prob_delta": c["max_abs_prob_delta"], "executed": r["executed"],
                           "passed": not any(k["status"] == "failed" for k in checks)}
    return runs


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(TIGHT))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-table"))
    parser.add_argument("--data-dir", type=Path, default=(ROOT / "../shared/imagenet-sample").resolve())
    parser.add_argument("--ranking", type=int, default=8, help="ranking images (convert --repair-images)")
    parser.add_argument("--held-out", type=int, default=32, help="held-out images (convert --held-out-images)")
    parser.add_argument("--speed-seconds", type=float, default=3.0, help="convert --speed-seconds")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import openvino as ov

    sys.path.insert(0, str(ROOT / "src"))
    from omzconv.execution import cpu_default_precision

    print(cpu_line())
    core = ov.Core()
    print(f"OpenVINO {ov.get_version()}")
    print(f"CPU OPTIMIZATION_CAPABILITIES: {', '.join(core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}")
    print(f"an f32 IR is computed in by default here: {cpu_default_precision()}")
    for name in args.names:
        started = time.perf_counter()
        tight = TIGHT.get(name, 2e-3)
        omzconv(args, "convert", name, "--synthetic-weights", "-p", "FP32,FP16,INT8", "--keep-precision", "none",
                "--data-dir", str(args.data_dir), "--json")
        fp16_bin = args.workdir / "out" / "synthetic" / name / "FP16" / f"{name}.bin"
        plain_sha = sha(fp16_bin) if fp16_bin.is_file() else None
        shipped = repair(args, name, ROOT / "models.yaml")
        keys = shipped["kept"]["image_keys"]
        held = held_out_dir(args, name, keys["held_out"])
        same = plain_sha is not None and sha(fp16_bin) == plain_sha
        before = verify(args, name, held, "FP32,FP16,INT8", "before")
        text = (ROOT / "models.yaml").read_text()
        if SHIPPED_FP16 not in text:
            sys.exit("models.yaml's FP16 tolerance line changed; update SHIPPED_FP16")
        tight_yaml = args.workdir / f"models-{name}-tight.yaml"
        tight_yaml.write_text(text.replace(SHIPPED_FP16, f"FP16: {{top1_pp: 0.3, max_prob_delta: {tight:g},"))
        tightened = repair(args, name, tight_yaml)
        if tightened["kept"]["image_keys"] != keys:
            sys.exit("the two repairs used different images")
        after = verify(args, name, held, "FP16", "after", tight_yaml)  # its own tolerance: else the IR is stale
        int8_meta = json.loads((args.workdir / "out" / "synthetic" / name / "INT8" / "omzconv.json").read_text())
        print_table(name, keys, same, before, after, shipped["kept"], tightened["kept"], tight, int8_meta,
                    time.perf_counter() - started)
    print("\nrun@bf16 (f32): asked for bf16, OpenVINO computed in f32 (verify's `executed`). tol: the FP16\n"
          "max |Δp| the repair aimed at. top-1: agreement with TensorFlow, before → after the repair; verdict:\n"
          "verify's, by that tolerance (before, tightened: the repair's own judge). kept: layers/IR ops kept\n"
          "f32; speed: repaired ÷ plain FP16 throughput (repair record). INT8 kept: ops NNCF's accuracy\n"
          "control reverted (—: not used). INT8 imgs: held-out images that did not calibrate it.")


def pct(x) -> str:
    return "—" if x is None else f"{x:.0%}"


def sci(x) -> str:
    return "—" if x is None else f"{x:.1e}"


def kept_cell(kept: dict) -> str:
    ops = kept["ops"] if isinstance(kept["ops"], int) else len(kept["ops"])
    return f"{len(kept['layers'])}/{ops}"


def speed_cell(kept: dict) -> str:
    sp = kept.get("speed")
    return f"{sp['kept_images_per_s'] / sp['plain_images_per_s']:.2f}×" if sp else "—"


def print_table(name, keys, same, before, after, shipped, tightened, tight, int8_meta, seconds) -> None:
    print(f"\n{name}, synthetic weights: {len(keys['held_out'])} held-out sample images "
          f"(not the {len(keys['ranking'])} ranking ones); {seconds:.0f} s")
    head = (f"  {'run':17} {'tol':>5} {'imgs':>4} {'top-1':>6} {'→':>5} {'max|Δp|':>8} {'→':>8} "
            f"{'verdict':>9} {'kept':>7} {'speed':>6}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for run in ("FP32", "FP32@bf16", "FP16", "FP16@bf16", "INT8", "INT8@bf16"):
        b = before.get(run)
        if b is None:
            continue
        label = run + (f" ({b['executed']})" if "@" in run else "")
        if run.startswith("FP16"):
            rows = (("0.1", shipped, b, verdict(b)), (f"{tight:g}", tightened, after[run],
                    verdict(tightened["results"]["held_out"]["before"])))
            for tol, kept, a, was in rows:
                print(f"  {label:17} {tol:>5} {b['images']:4} {pct(b['top1_agreement']):>6} "
                      f"{pct(a['top1_agreement']):>5} {sci(b['max_prob_delta']):>8} {sci(a['max_prob_delta']):>8} "
                      f"{was + '/' + verdict(a):>9} {kept_cell(kept):>7} {speed_cell(kept):>6}")
        else:
            ac = (int8_meta.get("accuracy_control") or {}) if run.startswith("INT8") else {}
            reverted = "—" if not ac else f"{len(ac.get('reverted') or ())} rev."
            print(f"  {label:17} {'':>5} {b['images']:4} {pct(b['top1_agreement']):>6} {'—':>5} "
                  f"{sci(b['max_prob_delta']):>8} {'—':>8} {verdict(b):>9} {reverted:>7} {'—':>6}")
    print(f"  tol 0.1 (shipped): kept nothing; the IR's .bin is {'byte-identical to' if same else 'NOT the same as'} "
          "the plain FP16 IR's.")
    for label, kept in (("0.1", shipped), (f"{tight:g}", tightened)):
        h = kept["results"]["held_out"]
        print(f"  repair record, tol {label}: held-out top-1 {pct(h['before']['top1_agreement'])} → "
              f"{pct(h['after']['top1_agreement'])}, max |Δp| {sci(h['before']['max_prob_delta'])} → "
              f"{sci(h['after']['max_prob_delta'])}; {kept['weights_kept']} weights f32")


def verdict(result: dict) -> str:
    return "pass" if result.get("passed") else "FAIL"


if __name__ == "__main__":
    main()

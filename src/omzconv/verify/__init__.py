"""Verify a conversion: run the original frozen graph (TensorFlow) and each IR (OpenVINO) on the
same ImageNet validation pixels, and report accuracy, agreement and pass/fail.

Modules, in the order data flows through them:

- `metrics`: plain arrays in, numbers out (`topk_ids`, `topk_correct`, `wilson_interval`,
  `agreement`, `set_agreement`, `prob_deltas`);
- `selection`: the images (`select_images`) and each model's labels for them;
- `artefacts`: the frozen graph and IRs verified (`ensure_artefacts`) and their runners;
- `cache`: `PredictionCache`, what each artefact predicted for each image, in sqlite, so an
  interrupted run resumes and a repeated one costs nothing;
- `checks`: pure functions from numbers and facts to `Check`s (`conversion_checks`,
  `reference_reasons`, `reference_checks`);
- `work`: a chunk of images through the runs (`Job` → `Worker` → `JobResult`), wherever it runs;
- `executors`: who runs the chunks: this process (`InProcess`), or Ray (`ray_executor.RayExecutor`,
  imported only when asked for: Ray is an optional extra);
- `evaluate`: the driver (plan the chunks, write the cache, decode once, every runtime on the same
  pixels) → `ModelReport`;
- `report`: `VerifyReport` and friends, dataclasses that serialize to JSON (`to_dict`), and
  `write_report`;
- `render_md`: the report as Markdown;
- `render_html` (+ `plots`, `templates/report.html.j2`): the report as one self-contained HTML page.

Nothing here prints. The public names are re-exported here: `from omzconv.verify import X`.
"""

from omzconv.verify.artefacts import (INT8, Artefact, ModelArtefacts, Runner, RunnerFactory, ensure_artefacts,
                                      int8_artefact, open_runner)
from omzconv.verify.cache import PredictionCache, cache_dir_for, image_key
from omzconv.verify.checks import (EPS, SYNTHETIC_WAIVER, applicable_references, conversion_checks, reference_checks,
                                   reference_reasons)
from omzconv.verify.evaluate import CHUNK, evaluate_model
from omzconv.verify.executors import Executor, InProcess
from omzconv.verify.metrics import (TOP_K, Z95, agreement, prob_deltas, set_agreement, topk_correct, topk_ids,
                                    wilson_interval)
from omzconv.verify.render_md import (accuracy_text, check_text, comparison_text, excluded_text, execution_text,
                                     percent, reference_text, render_markdown)
from omzconv.verify.report import (ORIGINAL, SCHEMA, SPEED_NOTE, SYNTHETIC_NOTE, Accuracy, Check, Comparison,
                                   DatasetInfo, Execution, ModelReport, comparable, PerImage, Problem, ReferenceResult, RunResult, Skipped,
                                   VerifyInterrupted, VerifyReport, WorkerSpeed, default_report_path, make_report, partial_path,
                                   write_report)
from omzconv.verify.selection import FIRST_PROBLEMS, Selection, model_labels, select_images, skipped, strict_error

__all__ = [
    "CHUNK", "EPS", "INT8", "SYNTHETIC_WAIVER", "FIRST_PROBLEMS", "ORIGINAL", "SCHEMA", "SPEED_NOTE", "SYNTHETIC_NOTE", "TOP_K", "Z95",
    "Accuracy", "Artefact", "Execution", "Executor", "InProcess", "PerImage", "WorkerSpeed", "Check", "Comparison", "DatasetInfo", "ModelArtefacts", "ModelReport",
    "PredictionCache", "Problem", "ReferenceResult", "RunResult", "Runner", "RunnerFactory", "Selection",
    "Skipped", "VerifyInterrupted", "VerifyReport",
    "accuracy_text", "agreement", "applicable_references", "cache_dir_for", "check_text", "comparable", "comparison_text", "conversion_checks", "excluded_text", "execution_text", "int8_artefact",
    "default_report_path", "ensure_artefacts", "evaluate_model", "image_key", "make_report", "model_labels",
    "open_runner", "partial_path", "percent", "prob_deltas", "reference_checks", "reference_reasons", "reference_text",
    "render_markdown", "select_images", "set_agreement", "skipped", "strict_error", "topk_correct", "topk_ids",
    "wilson_interval", "write_report",
]

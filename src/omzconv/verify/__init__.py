"""Verify a conversion: run the original frozen graph (TensorFlow) and each IR (OpenVINO) on the
same ImageNet validation pixels, and report accuracy, agreement and pass/fail.

Modules, in the order data flows through them:

- `metrics`: plain arrays in, numbers out (`topk_ids`, `topk_correct`, `wilson_interval`,
  `agreement`, `set_agreement`, `prob_deltas`);
- `selection`: the images (`select_images`) and each model's labels for them;
- `artefacts`: the frozen graph and IRs verified (`ensure_artefacts`) and their runners;
- `cache`: `PredictionCache`, what each artefact predicted for each image, in sqlite, so an
  interrupted run resumes and a repeated one costs nothing;
- `checks`: pure functions from predictions and facts to `Check`s (`conversion_checks`,
  `reference_reasons`, `reference_checks`): the per-precision criteria;
- `work`: a chunk of images through the runs (`Job` → `Worker` → `JobResult`), wherever it runs;
- `executors`: who runs the chunks: this process (`InProcess`), or Ray (`ray_executor.RayExecutor`,
  imported only when asked for: Ray is an optional extra);
- `evaluate`: the driver (plan the chunks, write the cache, decode once, every runtime on the same
  pixels) → `ModelReport`, assembled by `assemble` from each run's per-image state;
- `report`: `VerifyReport` and friends, dataclasses that serialize to JSON (`to_dict`); it knows
  no renderer;
- `explain`: `omzconv diff` on the worst images of a run that failed (its page beside the report),
  the diff command for one that disagreed (`explain_model` → `Explanation`s);
- `texts`: the one-line texts the terminal and both renderers share;
- `render_md`: a report as Markdown;
- `render_html` (+ `plots`, `templates/report.html.j2`): a report as one self-contained HTML page;
- `write`: `write_report`, which picks the renderer for a file, and where files go.

Each run is an IR precision × execution precision (`FP32`, `FP32@bf16`: `omzconv.execution`);
`artefacts.with_runs` makes one `Artefact` per run, which carries what OpenVINO is asked and
computes in to every worker, the cache key and the report.

Nothing here prints. The public names are re-exported here: `from omzconv.verify import X`.
"""

from omzconv.verify.artefacts import (INT8, Artefact, ModelArtefacts, Runner, RunnerFactory, ensure_artefacts,
                                      int8_artefact, open_runner, with_runs)
from omzconv.verify.cache import PredictionCache, cache_dir_for, image_key
from omzconv.verify.checks import (EPS, accuracy_reasons, applicable_references, conversion_checks, reference_checks,
                                   reference_reasons)
from omzconv.verify.evaluate import CHUNK, evaluate_model
from omzconv.verify.executors import Executor, InProcess
from omzconv.verify.metrics import (TOP_K, Z95, agreement, prob_deltas, set_agreement, topk_correct, topk_ids,
                                    wilson_interval)
from omzconv.verify.render_md import md_code, md_text, render_markdown
from omzconv.verify.explain import MAX_IMAGES, diff_command, explain_model, to_explain, worst_images
from omzconv.verify.report import (NOT_APPLICABLE, ORIGINAL, SCHEMA, SPEED_NOTE, SYNTHETIC_NOTE, Accuracy, Check,
                                   Comparison, DatasetInfo, Execution, Explanation, ModelReport, PerImage, Problem,
                                   ReferenceResult, RunResult, Skipped, VerifyInterrupted, VerifyReport, WorkerSpeed,
                                   comparable, make_report)
from omzconv.verify.selection import FIRST_PROBLEMS, Selection, model_labels, select_images, skipped, strict_error
from omzconv.verify.texts import (accuracy_text, check_text, compared_text, comparison_text, computed_text, cpu_text,
                                  decided_text, excluded_text, execution_text, explanation_text, kept_text, percent,
                                  plural, printable, reference_text, run_notes, selection_text, speed_text)
from omzconv.verify.write import default_report_path, diff_page_path, partial_path, report_format, write_report

__all__ = [
    "CHUNK", "EPS", "FIRST_PROBLEMS", "INT8", "MAX_IMAGES", "NOT_APPLICABLE", "ORIGINAL", "SCHEMA", "SPEED_NOTE", "SYNTHETIC_NOTE",
    "TOP_K", "Z95",
    "Accuracy", "Artefact", "Check", "Comparison", "DatasetInfo", "Execution", "Executor", "Explanation", "InProcess",
    "ModelArtefacts", "ModelReport", "PerImage", "PredictionCache", "Problem", "ReferenceResult", "RunResult",
    "Runner", "RunnerFactory", "Selection", "Skipped", "VerifyInterrupted", "VerifyReport", "WorkerSpeed",
    "accuracy_reasons", "accuracy_text", "agreement", "applicable_references", "cache_dir_for", "check_text",
    "comparable", "compared_text", "comparison_text", "computed_text", "conversion_checks", "cpu_text", "decided_text",
    "default_report_path", "diff_command", "diff_page_path", "ensure_artefacts", "evaluate_model", "excluded_text",
    "execution_text", "explain_model", "explanation_text", "image_key", "int8_artefact", "kept_text",
    "make_report", "md_code", "md_text", "model_labels", "open_runner", "partial_path", "percent", "plural",
    "printable", "prob_deltas", "reference_checks", "reference_reasons", "reference_text", "render_markdown",
    "report_format", "run_notes", "select_images", "selection_text", "set_agreement", "skipped", "speed_text",
    "strict_error",
    "to_explain", "topk_correct", "topk_ids", "wilson_interval", "with_runs", "worst_images", "write_report",
]

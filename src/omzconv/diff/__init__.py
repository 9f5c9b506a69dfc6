"""`omzconv diff`: where a converted model departs from the original, layer by layer.

Modules, in the order data flows through them:

- `match`: TensorFlow layers paired with IR ops by graph structure (the IR keeps no framework
  names on intermediate tensors) → `Matching`;
- `compare`: both runtimes on the same images with every matched layer as an output, errors
  accumulated per layer → `RunDiff`;
- `run`: `diff_model`, the artefacts, the images and every IR × execution precision;
- `report`: `DiffReport`, the first divergence, the layers adding the most error, JSON;
- `render`: the 80-column table rows and the HTML page (error vs depth, inline SVG).

Nothing here prints.
"""

from omzconv.diff.compare import FLOOR, GROUP_BYTES, LayerError, RunDiff, RunSpec, diff_run
from omzconv.diff.match import Layer, Matching, describe_unmatched, match, ov_graph, tf_graph
from omzconv.diff.report import THRESHOLD, DiffReport, first_divergence, output_error, to_dict, worst
from omzconv.diff.run import DEFAULT_IMAGES, diff_model, load_images
from omzconv.execution import INFERENCE_PRECISIONS, run_name

__all__ = [
    "DEFAULT_IMAGES", "FLOOR", "GROUP_BYTES", "INFERENCE_PRECISIONS", "THRESHOLD",
    "DiffReport", "Layer", "LayerError", "Matching", "RunDiff", "RunSpec",
    "describe_unmatched", "diff_model", "diff_run", "first_divergence", "load_images", "match", "ov_graph",
    "output_error", "run_name", "tf_graph", "to_dict", "worst",
]

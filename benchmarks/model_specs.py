"""GFLOPs and MParams per image of each model, counted on omzconv's own network (no weights needed).

    python benchmarks/model_specs.py [NAME ...] [--output NODE] [--json]

Builds the model's inference network with omzconv's builder (`omzconv.freeze.build_inference_graph`,
the same code `omzconv freeze` uses) at batch 1 and the model's input size, keeps the part that
feeds the model's default outputs (as freezing and converting do: Inception-v4's auxiliary head is
not in the IR), and counts from the ops' shapes. No checkpoint is read and no variable initialized.

The convention is the Open Model Zoo's: its figures come from OpenVINO's Model Analyzer run on the
converted IR, whose per-layer rules this follows on the TensorFlow graph, calibrated on its figures:

  GFLOPs, per image
    Conv2D, depthwise conv, MatMul    2 x multiply-accumulates (bias adds not counted)
    BatchNorm right after a conv      0 (folded into the conv's weights and bias)
    BatchNorm anywhere else           2 per element (scale + shift: ResNet-v2's pre-activation)
    ReLU, ReLU6                       2 per element
    max / average pooling, Mean       kernel area per output element (Mean: a global pooling)
    Add (or Mul) of two activations   2 per element (a residual sum; 1 gives MobileNet-v2 0.614,
                                      not the Open Model Zoo's 0.615)
    Add / Mul of a constant           1 per element; 0 right after a conv (folded into it, as the
                                      scale of Inception-ResNet-v2's residual branches is)
    Softmax                           5 per element
    input preprocessing               1 per input element for the mean, 1 more for the scale (the
                                      PrePostProcessor steps `omzconv convert` puts in the IR)
    concat, reshape, squeeze, pad     0
  MParams
    conv / depthwise / MatMul weights and biases, plus per BatchNorm channel 1 (folded: it becomes
    the conv's bias) or 2 (not folded: a scale and a shift).

Calibration: inception_v4 gives 24.584 GFLOPs (24,583,777,891 FLOPs) and 42.650 MParams
(42,649,769), against the Open Model Zoo's 24.584 / 42.648; inception_resnet_v2 cut at
`--output InceptionResnetV2/AuxLogits/Logits/BiasAdd` (the Open Model Zoo's graph) gives
22.227 / 30.223, its figures exactly. Its googlenet-v1-tf, googlenet-v3 and four MobileNet figures
match to the last digit, and so do its vgg16 / vgg19 (Caffe, the same networks). googlenet-v2-tf's
4.058 / 11.185 is what this gives when Inception-v2's first layer (a separable 7x7: depthwise x 8,
then 1x1 to 64) is counted as a dense 7x7x3x64 conv; the network is separable (TF-Slim's own FLOPs
table agrees) and counts 3.890 / 11.179. An op type without a rule is an error, never a silent 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's omzconv, whatever is installed

from omzconv.errors import OmzconvError
from omzconv.registry import Model, load_registry

CONVS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
BATCH_NORMS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
FREE = {"Placeholder", "Const", "Identity", "VarHandleOp", "ReadVariableOp", "VariableV2", "ConcatV2", "Reshape",
        "Squeeze", "Pad", "Shape", "StridedSlice", "Pack"}


@dataclass(frozen=True)
class Spec:
    model: str
    gflops: float  # 3 decimals, as models.yaml keeps them
    mparams: float
    flops: int
    params: int
    outputs: tuple[str, ...]


def _elements(tensor: Any) -> int:
    return prod(tensor.shape.as_list())


def _follows_conv(op: Any) -> bool:
    """True when `op`'s input comes straight from a conv (or its bias add), so the converter folds it."""
    source = op.inputs[0].op
    if source.type == "BiasAdd":
        source = source.inputs[0].op
    return source.type in CONVS


def _conv(op: Any) -> tuple[int, int]:
    kernel = op.inputs[1].shape.as_list()
    if op.type == "MatMul":
        macs_per_output = kernel[0]
    elif op.type == "DepthwiseConv2dNative":
        macs_per_output = kernel[0] * kernel[1]  # each output channel reads one input channel
    else:
        macs_per_output = kernel[0] * kernel[1] * kernel[2]
    return 2 * macs_per_output * _elements(op.outputs[0]), prod(kernel)


def _batch_norm(op: Any) -> tuple[int, int]:
    channels = op.inputs[1].shape.as_list()[0]
    if _follows_conv(op):
        return 0, channels
    return 2 * _elements(op.outputs[0]), 2 * channels


def _pool(op: Any) -> tuple[int, int]:
    ksize = op.get_attr("ksize")
    return ksize[1] * ksize[2] * _elements(op.outputs[0]), 0


def _add_or_mul(op: Any) -> tuple[int, int]:
    a, b = (t.shape.as_list() for t in op.inputs)
    if a == b:  # two activations: a residual sum
        return 2 * _elements(op.outputs[0]), 0
    if _follows_conv(op):  # by a constant, right after a conv: folded into its weights and bias
        return 0, 0
    return _elements(op.outputs[0]), 0


RULES: dict[str, Callable[[Any], tuple[int, int]]] = {
    **{kind: _conv for kind in CONVS},
    **{kind: _batch_norm for kind in BATCH_NORMS},
    "BiasAdd": lambda op: (0, op.inputs[1].shape.as_list()[0]),
    "Relu": lambda op: (2 * _elements(op.outputs[0]), 0),
    "Relu6": lambda op: (2 * _elements(op.outputs[0]), 0),
    "MaxPool": _pool,
    "AvgPool": _pool,
    "Mean": lambda op: (_elements(op.inputs[0]), 0),
    "Add": _add_or_mul,
    "AddV2": _add_or_mul,
    "Mul": _add_or_mul,
    "Softmax": lambda op: (5 * _elements(op.outputs[0]), 0),
    **{kind: (lambda op: (0, 0)) for kind in FREE},
}


def preprocessing_flops(model: Model) -> int:
    """The PrePostProcessor's arithmetic per image: a mean step, and a scale step unless it is 1."""
    steps = 1 + (model.preprocessing.scale != (1.0,))
    return steps * prod(model.input.shape[1:])


def measure(model: Model, outputs: Sequence[str] | None = None) -> Spec:
    """FLOPs and parameters of `model`'s network up to `outputs` (default: its default outputs)."""
    from omzconv.freeze import build_inference_graph, check_outputs
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    outputs = tuple(outputs or (o.name for o in model.default_outputs))
    graph = tf.Graph()
    build_inference_graph(model, graph, batch=1)
    check_outputs(graph, outputs)
    kept = tf.graph_util.extract_sub_graph(graph.as_graph_def(), list(outputs))
    flops, params = preprocessing_flops(model), 0
    for node in kept.node:
        op = graph.get_operation_by_name(node.name)
        if op.type not in RULES:
            raise ValueError(f"{model.name}: no counting rule for {op.type} ({op.name})")
        op_flops, op_params = RULES[op.type](op)
        flops += op_flops
        params += op_params
    return Spec(model.name, round(flops / 1e9, 3), round(params / 1e6, 3), flops, params, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models [default: every model in models.yaml]")
    parser.add_argument("--output", action="append", help="count up to this node instead of the default outputs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()
    try:
        report(args.names, args.output, args.json)
    except OmzconvError as exc:
        raise SystemExit(f"Error: {exc}") from None


def report(names: Sequence[str], outputs: Sequence[str] | None, as_json: bool) -> None:
    """Print the table (beside each model, what models.yaml records), or the JSON."""
    registry = load_registry(ROOT / "models.yaml")
    models = [registry.model(name) for name in names] if names else list(registry.models)
    specs = []
    if not as_json:
        print(f"{'model':<22} {'GFLOPs':>8} {'MParams':>8}  models.yaml", flush=True)
    for model in models:
        spec = measure(model, outputs)
        specs.append(spec)
        if not as_json:
            recorded = f"{model.gflops:.3f} / {model.mparams:.3f}" if model.gflops or model.mparams else "-"
            differs = "" if (spec.gflops, spec.mparams) == (model.gflops, model.mparams) else "  (differs)"
            print(f"{spec.model:<22} {spec.gflops:>8.3f} {spec.mparams:>8.3f}  {recorded}{differs}", flush=True)
    if as_json:
        print(json.dumps([asdict(spec) for spec in specs], indent=2))


if __name__ == "__main__":
    main()

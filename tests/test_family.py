"""The TF-Slim family end to end on synthetic weights: one model per source kind and per
preprocessing recipe (checkpoint + inception, checkpoint + VGG, shipped frozen graph + inception),
from nothing to an IR verified image by image on the 200 sample images.

The whole family (all seventeen) runs in benchmarks/family.py.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from omzconv.cli import main

pytestmark = pytest.mark.slow

END_TO_END = ["inception_v1", "resnet_v1_50", "mobilenet_v1_025_128"]


def _needs_network(model) -> None:
    from omzconv.nets import SLIM_NETS

    if model.network not in SLIM_NETS and importlib.util.find_spec(f"omzconv.nets.{model.network}") is None:
        pytest.skip(f"omzconv.nets.{model.network} is not in this checkout yet")


@pytest.mark.parametrize("name", END_TO_END)
def test_convert_and_verify_on_the_sample(name, artefacts, shared_dir):
    model = artefacts.model(name)
    _needs_network(model)
    ws = artefacts.workspace
    for precision in ("FP32", "FP16"):
        xml = artefacts.ir(name, precision)
        meta = json.loads((xml.parent / "omzconv.json").read_text())
        assert meta["check"]["passed"], meta["check"]

    from omzconv.ovcompat import import_openvino

    ir = import_openvino().Core().read_model(str(artefacts.ir(name, "FP32")))
    size = model.size
    assert list(ir.inputs[0].get_partial_shape().to_shape()) == [1, 3, size, size]  # the model's own input size
    assert {o.get_any_name() for o in ir.outputs} == {o.name for o in model.default_outputs}
    assert list(ir.outputs[0].get_partial_shape().to_shape()) == [1, model.num_classes]
    assert ir.get_rt_info(["model_info", "preprocessing"]).astype(str) == model.preprocessing.recipe
    assert len(ir.get_rt_info(["model_info", "labels"]).astype(str).split()) == model.num_classes

    root = ["--cache-dir", str(ws.cache_dir), "-o", str(ws.output_dir), "-q"]
    result = CliRunner().invoke(main, [*root, "verify", name, "--synthetic-weights", "--data-dir",
                                       str(shared_dir / "imagenet-sample"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    [entry] = report["models"]
    fp32 = next(c for c in entry["comparisons"] if c["precision"] == "FP32")
    assert fp32["images"] == 200 and fp32["top1_agreement"] == 1.0, fp32
    fp16 = next(c for c in entry["comparisons"] if c["precision"] == "FP16")
    assert fp16["top1_agreement"] >= 0.95, fp16


def test_frozen_graph_model_adopts_the_graph_and_rebuilds_from_a_checkpoint(artefacts, tmp_path):
    """A model that ships a frozen graph: freeze adopts it byte for byte (hash in the sidecar);
    `freeze --checkpoint` of a checkpoint rebuilds the same network with omzconv's builder.

    mobilenet_v1_025_128, the cheapest such model: its archive holds the checkpoint the graph was
    frozen from, as the authors' does, so nothing is generated twice (inception_v3, whose archive
    holds only the graph, is adopted in test_synthetic.py)."""
    from omzconv.fileutil import file_digest, read_json
    from omzconv.freeze import freeze, sidecar_path
    from omzconv.runners import TFRunner
    from omzconv.selfcheck import check_images, reference_path

    model = artefacts.model("mobilenet_v1_025_128")
    assert model.source == "frozen_graph"
    frozen = artefacts.frozen(model.name)
    shipped = artefacts.workspace.source_path(model)
    assert frozen.read_bytes() == shipped.read_bytes()
    meta = read_json(sidecar_path(frozen))
    assert meta["source"] == "frozen_graph" and meta["network_source"] == "authors"
    assert meta["sha256"] == meta["source_sha256"] == "sha256:" + file_digest(shipped)
    assert reference_path(frozen).is_file()

    # The checkpoint beside the graph in the archive (the one the synthetic graph was frozen from)
    # rebuilds it.
    checkpoint = artefacts.workspace.checkpoint_path(model)
    assert checkpoint.is_file() and checkpoint != shipped
    rebuilt = freeze(model, checkpoint, tmp_path / f"{model.name}.frozen.pb", weights="custom")
    assert not rebuilt.skipped and read_json(sidecar_path(rebuilt.path))["source"] == "checkpoint"
    output = model.default_outputs[0].name
    images = check_images(model)
    a, b = (TFRunner(model, [output], pb_path=p) for p in (frozen, rebuilt.path))
    try:
        import numpy as np

        np.testing.assert_allclose(a.run(images)[output], b.run(images)[output], atol=1e-5)
    finally:
        a.close()
        b.close()


def test_shipped_graph_that_does_not_fit_is_refused(artefacts, tmp_path):
    from omzconv.errors import GraphError
    from omzconv.freeze import adopt

    model = artefacts.model("inception_v3")
    graph = artefacts.workspace.source_path(artefacts.model("inception_v1"))  # a checkpoint, not a graph
    artefacts.checkpoint("inception_v1")
    with pytest.raises(GraphError, match="not a TensorFlow GraphDef"):
        adopt(model, graph, tmp_path / "x.pb")
    artefacts.frozen("inception_v1")
    with pytest.raises(GraphError, match="node 'InceptionV3/Predictions/Softmax' is not in"):
        adopt(model, artefacts.workspace.frozen_path(artefacts.model("inception_v1")), tmp_path / "x.pb")
    assert not (tmp_path / "x.pb").exists()

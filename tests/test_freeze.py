"""Freeze: checkpoint (V1 and V2) → frozen graph, faithful, deterministic, atomic, re-run safe."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.checkpoint import TABLE_MAGIC, checkpoint_files
from omzconv.errors import CheckpointError, GraphError
from omzconv.fileutil import file_digest
from omzconv.freeze import build_inference_graph, freeze
from omzconv.procedural import natural_images
from omzconv.runners import TFRunner

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["inception_v4", "inception_resnet_v2"]


def _images(n=2):
    return natural_images(n, 299, seed=7).astype(np.float32)


def _copy_checkpoint(source: Path, dest_prefix: Path, *, drop=(), reshape=()) -> Path:
    """Rewrite a checkpoint as V2, optionally dropping or reshaping variables (no network built)."""
    from omzconv.tfcompat import import_tf, session_config
    tf = import_tf()
    reader = tf.train.NewCheckpointReader(str(source))
    with tf.Graph().as_default() as graph:
        variables = []
        for name in sorted(reader.get_variable_to_shape_map()):
            if name in drop:
                continue
            value = reader.get_tensor(name)
            if name in reshape:
                value = np.zeros([*value.shape[:-1], value.shape[-1] + 1], value.dtype)
            variables.append(tf.Variable(value, name=name))
        saver = tf.train.Saver(variables, write_version=tf.train.SaverDef.V2)
        with tf.Session(graph=graph, config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            saver.save(sess, str(dest_prefix), write_meta_graph=False, write_state=False)
    return dest_prefix


@pytest.mark.parametrize("name", MODELS)
def test_frozen_graph_equals_unfrozen_graph(artefacts, name):
    """The frozen graph computes what the restored network computes, on the same input."""
    from omzconv.tfcompat import import_tf, session_config
    tf = import_tf()
    model, ckpt, pb = artefacts.model(name), artefacts.checkpoint(name), artefacts.frozen(name)
    output = model.default_outputs[0].name
    x = _images()
    graph = tf.Graph()
    images, _ = build_inference_graph(model, graph, batch=len(x))
    with graph.as_default(), tf.Session(graph=graph, config=session_config()) as sess:
        tf.train.Saver().restore(sess, str(ckpt))
        unfrozen = sess.run(graph.get_tensor_by_name(f"{output}:0"), {images: (x - 127.5) / 127.5})
    frozen = TFRunner(model, [output], pb_path=pb).run(x)[output]
    assert frozen.shape == (2, 1001)
    np.testing.assert_allclose(frozen, unfrozen, rtol=1e-5, atol=1e-4)  # logits or probabilities
    assert len(set(frozen.argmax(-1))) == 2  # two different images, two different classes


def test_v2_checkpoint_freezes_to_the_same_graph(artefacts, tmp_path):
    """The checkpoint format, not the network, is under test: one model (V1 is every other test's)."""
    name = "inception_v4"
    model, ckpt, pb = artefacts.model(name), artefacts.checkpoint(name), artefacts.frozen(name)
    prefix = _copy_checkpoint(ckpt, tmp_path / "v2" / "model.ckpt")
    assert checkpoint_files(prefix.with_name("model.ckpt.index"))[0] == prefix
    result = freeze(model, prefix, tmp_path / "out.frozen.pb", weights="custom")
    assert result.nodes > 1000 and not result.skipped
    assert file_digest(result.path) == file_digest(pb)  # same weights, same bytes


def test_missing_and_misshaped_variables_are_named(artefacts, tmp_path):
    model = artefacts.model("inception_v4")
    missing, misshaped = "InceptionV4/Mixed_5a/Branch_0/Conv2d_1a_3x3/weights", "InceptionV4/Logits/Logits/biases"
    prefix = _copy_checkpoint(artefacts.checkpoint("inception_v4"), tmp_path / "bad" / "model.ckpt",
                              drop=[missing], reshape=[misshaped])
    pb = tmp_path / "bad.frozen.pb"
    with pytest.raises(CheckpointError) as info:
        freeze(model, prefix, pb)
    message = str(info.value)
    assert "2 of 608 variables wrong" in message
    assert f"{missing} missing" in message
    assert f"{misshaped} has shape [1002], the network needs [1001]" in message
    assert not pb.exists() and list(tmp_path.glob("*.tmp")) == []


def test_not_a_checkpoint(artefacts, tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="junk.ckpt is not a TensorFlow checkpoint"):  # told before TF loads
        freeze(artefacts.model("inception_v4"), junk, tmp_path / "x.pb")
    junk.write_bytes(b"\x00" * 100 + TABLE_MAGIC)  # looks like a checkpoint table, is not one
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        freeze(artefacts.model("inception_v4"), junk, tmp_path / "x.pb")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        freeze(artefacts.model("inception_v4"), tmp_path / "absent.ckpt", tmp_path / "x.pb")


def test_rerun_skips_force_redoes_with_identical_bytes(artefacts):
    model, pb = artefacts.model("inception_v4"), artefacts.frozen("inception_v4")
    ckpt = artefacts.checkpoint("inception_v4")
    before = file_digest(pb)
    again = freeze(model, ckpt, pb, weights="synthetic")
    assert again.skipped
    forced = freeze(model, ckpt, pb, weights="synthetic", force=True)
    assert not forced.skipped and file_digest(pb) == before  # deterministic bytes
    meta = json.loads(pb.with_suffix(".json").read_text())
    assert meta["weights"] == "synthetic" and meta["sha256"] == "sha256:" + before
    assert meta["outputs"] == ["InceptionV4/Logits/Predictions"]
    pb.with_suffix(".json").write_text(json.dumps({**meta, "outputs": ["other"]}))
    assert not freeze(model, ckpt, pb, weights="synthetic").skipped  # a stale sidecar means redo


def test_output_override_and_unknown_output(artefacts, tmp_path):
    model = artefacts.model("inception_resnet_v2")
    ckpt = artefacts.checkpoint("inception_resnet_v2")
    with pytest.raises(GraphError, match=r"did you mean InceptionResnetV2/AuxLogits/Logits/BiasAdd"):
        freeze(model, ckpt, tmp_path / "x.pb", ["InceptionResnetV2/AuxLogits/Logit/BiasAdd"])
    aux = "InceptionResnetV2/AuxLogits/Logits/BiasAdd"
    result = freeze(model, ckpt, tmp_path / "aux.frozen.pb", [aux])
    out = TFRunner(model, [aux], pb_path=result.path).run(_images(1))[aux]
    assert out.shape == (1, 1001)
    main_head = TFRunner(model, [model.default_outputs[0].name], pb_path=artefacts.frozen("inception_resnet_v2"))
    assert result.nodes < len(main_head.graph.as_graph_def().node)  # cut before the main head


def test_cli_freeze_synthetic_json(artefacts, synthetic_workspace):
    artefacts.frozen("inception_v4")
    result = CliRunner().invoke(main, ["--cache-dir", str(synthetic_workspace.cache_dir), "-o",
                                       str(synthetic_workspace.output_dir), "freeze", "inception_v4",
                                       "--synthetic-weights", "--json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert entry["skipped"] is True and entry["weights"] == "synthetic"
    assert "/synthetic/inception_v4/" in entry["path"]


def test_cli_checkpoint_needs_one_model():
    result = CliRunner().invoke(main, ["freeze", "--all", "--checkpoint", "x.ckpt"])
    assert result.exit_code == 2 and "--checkpoint needs exactly one model" in result.output


# --- the upstream route: a research/slim tree, --slim-dir, and patches/freeze.py.patch -----------

@pytest.fixture
def slim_tree(tmp_path) -> Path:
    """A minimal stand-in for tensorflow/models with research/slim/nets/nets_factory.py."""
    nets = tmp_path / "models" / "research" / "slim" / "nets"
    nets.mkdir(parents=True)
    (nets / "__init__.py").write_text("")
    (nets / "nets_factory.py").write_text(textwrap.dedent('''
        """Stand-in nets_factory: same interface as upstream, omzconv's builders underneath."""
        from omzconv.nets import NETWORKS

        nets_map = dict(NETWORKS)

        def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False):
            build = nets_map[name]
            def network_fn(images, **kwargs):
                return build(images, num_classes=num_classes, is_training=is_training, **kwargs)
            network_fn.default_image_size = 299
            return network_fn
        '''))
    return tmp_path / "models"


def test_slim_dir_route_gives_the_same_graph(artefacts, slim_tree, tmp_path):
    from omzconv.pipeline import ensure_frozen
    from omzconv.workspace import Workspace
    model = artefacts.model("inception_v4")
    ws = Workspace(tmp_path / "cache", tmp_path / "out")
    result = ensure_frozen(model, ws, checkpoint=artefacts.checkpoint("inception_v4"),
                           slim_dir=slim_tree / "research" / "slim")
    meta = json.loads(result.path.with_suffix(".json").read_text())
    assert meta["network_source"].startswith("slim:") and meta["weights"] == "custom"
    assert file_digest(result.path) == file_digest(artefacts.frozen("inception_v4"))


def test_slim_dir_that_is_not_slim(tmp_path):
    result = CliRunner().invoke(main, ["-o", str(tmp_path), "freeze", "inception_v4", "--synthetic-weights",
                                       "--slim-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a research/slim checkout: nets/nets_factory.py not found" in result.output


def test_freeze_py_patch_applies_and_freezes(artefacts, slim_tree, tmp_path):
    patch = ROOT / "patches" / "freeze.py.patch"
    subprocess.run(["patch", "-p1", "-i", str(patch)], cwd=slim_tree, check=True, capture_output=True)
    slim = slim_tree / "research" / "slim"
    out = tmp_path / "upstream.pb"
    env = {"PYTHONPATH": f"{slim}:{ROOT / 'src'}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "freeze.py", "--ckpt", str(artefacts.checkpoint("inception_v4")),
                           "--name", "inception_v4", "--num_classes", "1001",
                           "--output", "InceptionV4/Logits/Predictions", "--output_file", str(out)],
                          cwd=slim, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote" in proc.stdout
    model = artefacts.model("inception_v4")
    output = "InceptionV4/Logits/Predictions"
    x = _images(1)
    np.testing.assert_allclose(TFRunner(model, [output], pb_path=out).run(x)[output],
                               TFRunner(model, [output], pb_path=artefacts.frozen("inception_v4")).run(x)[output],
                               atol=1e-6)


def test_upstream_style_batch_norm_needs_and_gets_the_inference_scope():
    """Upstream nets pass updates_collections=UPDATE_OPS: that path is broken on current TF, and
    the scope omzconv wraps upstream networks in routes around it without changing the result."""
    from omzconv.tfcompat import import_slim, import_tf, inference_batch_norm_scope, session_config
    tf, slim = import_tf(), import_slim()
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        inputs = tf.constant(x)
        with pytest.raises((ImportError, AttributeError, ModuleNotFoundError)):
            slim.batch_norm(inputs, updates_collections=tf.GraphKeys.UPDATE_OPS, is_training=False, scope="a")
        with inference_batch_norm_scope():
            upstream = slim.batch_norm(inputs, updates_collections=tf.GraphKeys.UPDATE_OPS, is_training=False,
                                       scope="b")
        ours = slim.batch_norm(inputs, updates_collections=None, is_training=False, scope="c")
        assert sorted(v.op.name for v in tf.global_variables() if v.op.name.startswith("b/")) == [
            "b/beta", "b/moving_mean", "b/moving_variance"]
        assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
        with tf.Session(graph=graph, config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            a, b = sess.run([upstream, ours])
    np.testing.assert_array_equal(a, b)

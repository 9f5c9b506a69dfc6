"""`verify --executor ray`: on a local Ray instance with two workers (started once for this module),
the report equals the in-process executor's — with files shared or shipped through the object
store, with a worker killed mid-run, and after Ctrl-C and a resume — and Ray stays private."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.errors import OmzconvError

MODEL = "mobilenet_v1_025_128"  # the cheapest model: what is tested here is the executor
CHUNK = 16  # small chunks: many in flight, so a worker killed mid-run always has some


def _ray():
    """Ray; in CI (CI=true) its absence is an error, elsewhere the Ray tests are skipped."""
    if os.environ.get("CI"):
        import ray
        return ray
    return pytest.importorskip("ray", reason="pip install -e '.[test,ray]' to run the Ray tests")


@pytest.fixture(scope="module")
def ray_executor():
    _ray()
    from omzconv.verify.ray_executor import RayExecutor

    executor = RayExecutor(workers=2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def setup(artefacts, registry, shared_dir):
    from omzconv.verify import ensure_artefacts, select_images

    model = artefacts.model(MODEL)
    arts = ensure_artefacts(model, artefacts.workspace, registry, ["FP32", "FP16"])
    selection = select_images(registry.dataset("imagenet-val"), shared_dir / "imagenet-sample")
    return model, arts, selection, registry.tolerances


def _evaluate(setup, **kwargs):
    from omzconv.verify import evaluate_model

    model, arts, selection, tolerances = setup
    return evaluate_model(model, arts, selection, tolerances, chunk=CHUNK, **kwargs)


def _figures(setup, model_report) -> dict:
    from omzconv.verify import comparable, make_report

    return comparable(make_report(setup[2], [model_report], synthetic=True).to_dict())


@pytest.fixture(scope="module")
def in_process(setup):
    return _evaluate(setup)


def test_ray_report_equals_the_in_process_one(setup, in_process, ray_executor):
    report = _evaluate(setup, executor=ray_executor)
    assert _figures(setup, report) == _figures(setup, in_process)
    assert report.images == 200 and report.passed
    e = report.execution
    assert (e.executor, e.address, e.workers) == ("ray", "local", 2)
    assert len(e.per_worker) == 2 and sum(w.images for w in e.per_worker) == 200  # both worked, once per image
    assert all(w.images_per_second > 0 for w in e.per_worker)
    assert in_process.execution.executor == "in-process" and in_process.execution.per_worker[0].images == 200


@contextmanager
def _watching(executor, monkeypatch):
    """The pools `executor` opens, as they are opened."""
    pools, pool = [], executor.pool

    @contextmanager
    def watched(*args, **kwargs):
        with pool(*args, **kwargs) as p:
            pools.append(p)
            yield p

    monkeypatch.setattr(executor, "pool", watched)
    yield pools


def test_a_killed_worker_is_replaced_nothing_lost_nothing_counted_twice(setup, in_process, ray_executor,
                                                                       monkeypatch):
    from omzconv.verify.ray_executor import RayExecutor

    shipping = RayExecutor(workers=2, files="ship")  # joins the module's instance; files via the object store
    killed = []
    with _watching(shipping, monkeypatch) as pools:
        def on_progress(images):
            if not killed:  # the first chunk is back: the other worker has two in flight
                killed.append(pools[0].pids()[0])
                os.kill(killed[0], signal.SIGKILL)

        report = _evaluate(setup, executor=shipping, on_progress=on_progress)
    assert killed and pools[0].retried >= 1
    assert _figures(setup, report) == _figures(setup, in_process)  # every run: 200 inferred, none twice
    assert sum(w.images for w in report.execution.per_worker) == 200
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)


def test_ctrl_c_keeps_every_returned_chunk_and_a_run_without_ray_resumes(setup, in_process, ray_executor,
                                                                        tmp_path):
    from omzconv.verify import VerifyInterrupted

    def interrupt(images):
        raise KeyboardInterrupt

    with pytest.raises(VerifyInterrupted) as caught:
        _evaluate(setup, executor=ray_executor, cache_dir=tmp_path, on_progress=interrupt)
    partial = caught.value.report
    done = {r.name: r.inferred for r in partial.runs}
    assert partial.interrupted and 0 < done["original"] < 200 and done["FP32"] == done["original"]

    resumed = _evaluate(setup, cache_dir=tmp_path)  # in process, from Ray's cache entries
    assert {r.name: r.cached for r in resumed.runs} == done
    assert all(r.cached + r.inferred == 200 for r in resumed.runs)
    figures, expected = _figures(setup, resumed), _figures(setup, in_process)
    for data in (figures, expected):
        for run in data["models"][0]["runs"]:
            run.pop("inferred"), run.pop("cached")
    assert figures == expected


def _local_addresses() -> set[str]:
    """Every address this machine has a socket bound to, plus loopback."""
    local = {"127.0.0.1", "::1", "0.0.0.0", "::"}
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in open(path).read().splitlines()[1:]:
            local.add(_ip(line.split()[1].split(":")[0], width))
    return local


def _ip(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    address = socket.inet_ntop(socket.AF_INET6, words)
    return address.removeprefix("::ffff:")


def _remote_addresses() -> set[str]:
    remote = set()
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in open(path).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01":  # established
                remote.add(_ip(fields[2].split(":")[0], width))
    return remote


def test_ray_runs_private_no_usage_stats_no_dashboard_no_outside_connection(setup, ray_executor):
    ray = _ray()
    from ray._common.usage import usage_lib

    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0" and not usage_lib.usage_stats_enabled()

    @ray.remote
    def worker_view():
        from ray._common.usage import usage_lib
        return os.environ.get("RAY_USAGE_STATS_ENABLED"), usage_lib.usage_stats_enabled()

    assert ray.get(worker_view.remote()) == ("0", False)  # in the processes Ray started, too
    assert not ray._private.worker.global_worker.node.address_info.get("webui_url")  # no dashboard
    _evaluate(setup, executor=ray_executor)  # a run: workers, object store, results
    outside = _remote_addresses() - _local_addresses()
    assert not outside, f"connections to {outside}"


# --- without a cluster: errors -------------------------------------------------------------------


def _verify(*args):
    return CliRunner().invoke(main, ["verify", MODEL, "--synthetic-weights", "--data-dir", "unused", *args])


def test_ray_options_need_the_ray_executor():
    result = _verify("--workers", "2")
    assert result.exit_code == 2 and "apply to --executor ray" in result.output


def test_no_ray_installed_says_how_to_install_it(monkeypatch):
    from omzconv.verify.ray_executor import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the package
    with pytest.raises(OmzconvError, match=r"^--executor ray needs Ray: pip install 'omzconv\[ray\]'$"):
        import_ray()


def test_an_unreachable_cluster_is_one_line_naming_it(tmp_path, shared_dir):
    _ray()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["-o", str(tmp_path), "verify", MODEL, "--synthetic-weights", "--data-dir",
                                       str(shared_dir / "imagenet-sample"), "--executor", "ray",
                                       "--ray-address", f"ray://127.0.0.1:{port}"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: cannot reach the Ray cluster at ray://127.0.0.1:{port}: Connection refused"]
    assert not (tmp_path / "reports").exists()

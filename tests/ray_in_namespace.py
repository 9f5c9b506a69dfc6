"""The Ray tests: run by `test_verify_ray.py` inside a network namespace (loopback only), under strace.

On a local Ray instance with two workers (started once for this module by omzconv), the report
equals the in-process executor's — with files shared or shipped through the object store, with a
worker killed mid-run, and after Ctrl-C and a resume — and the instance listens on loopback only and
keeps its files in a private folder. Not collected by a plain `pytest` run (the file name does not
start with `test_`): `test_verify_ray.py::test_local_ray_verify_contacts_nothing_but_loopback` runs it.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.workspace import Workspace
from test_verify_ray import CACHE_ENV, MODEL, NAMESPACE_ENV, OUTPUT_ENV, _loopback

if os.environ.get(NAMESPACE_ENV) != "1":
    pytest.skip("starts Ray: run by tests/test_verify_ray.py inside a loopback-only network namespace",
                allow_module_level=True)

CHUNK = 16  # small chunks: many in flight, so a worker killed mid-run always has some


@pytest.fixture(scope="session")
def synthetic_workspace() -> Workspace:
    """The calling session's synthetic workspace: its artefacts are built already."""
    return Workspace(cache_dir=Path(os.environ[CACHE_ENV]), output_dir=Path(os.environ[OUTPUT_ENV]), synthetic=True)


@pytest.fixture(scope="module")
def ray_executor():
    from omzconv.verify.ray_executor import RayExecutor  # before anything imports ray: omzconv configures it

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


def _inet_sockets() -> list[tuple[str, str, str]]:
    """(protocol, local address, remote address) of every TCP and UDP socket in this network namespace."""
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]:
            local, remote = line.split()[1:3]
            found.append((protocol, _ip(local.split(":")[0]), _ip(remote.split(":")[0])))
    return found


def _ip(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def test_local_ray_listens_on_loopback_keeps_its_files_private_and_reports_nothing(ray_executor):
    import ray
    from ray._common.usage import usage_lib

    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0" and not usage_lib.usage_stats_enabled()
    private = ray_executor.temp

    @ray.remote
    def worker_view():
        import tempfile

        from ray._common.usage import usage_lib
        return (os.environ.get("RAY_USAGE_STATS_ENABLED"), usage_lib.usage_stats_enabled(), os.environ.get("HOME"),
                tempfile.gettempdir())

    # in the processes Ray started too; HOME holds the cluster config that spares the metadata lookups
    assert ray.get(worker_view.remote()) == ("0", False, str(private / "home"), str(private / "tmp"))
    assert os.environ["HOME"] != str(private / "home")  # this process keeps its own
    node = ray._private.worker.global_worker.node
    assert not node.address_info.get("webui_url")  # no dashboard
    assert node.node_ip_address == "127.0.0.1"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert Path(node.get_session_dir_path()).parent == private / "ray"  # not /tmp/ray
    sockets = _inet_sockets()  # GCS, raylet, object manager, agents, the worker above: all of this namespace's
    listening = [s for s in sockets if s[2] in ("0.0.0.0", "::")]
    assert len(listening) >= 4, sockets
    outside = [s for s in sockets if not _loopback(s[1]) or not (_loopback(s[2]) or s[2] in ("0.0.0.0", "::"))]
    assert not outside, f"sockets not on loopback: {outside}"


# --- without a cluster: errors -------------------------------------------------------------------


def test_an_unreachable_cluster_is_one_line_naming_it(tmp_path, shared_dir):
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

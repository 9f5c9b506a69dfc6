"""`verify --executor ray`: the Ray tests (`ray_in_namespace.py`) run in a network namespace whose only
interface is loopback, under strace, and no process of theirs — driver, GCS, raylet, dashboard,
agents, workers — tries to reach an address that is not loopback; plus the errors that need no Ray.

The namespace's loopback also carries a documentation address (192.0.2.1, 2001:db8::1), so Ray finds a
configured non-loopback address and behaves as on a networked machine (its node-IP discovery looks
for one before it connects to 8.8.8.8); with no route out, every attempt fails at once, and nothing
can leave the namespace.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.errors import OmzconvError

HERE = Path(__file__).resolve().parent
MODEL = "mobilenet_v1_025_128"  # the cheapest model: what is tested is the executor
TRACED = "connect,sendto,sendmsg,sendmmsg,bind"
NAMESPACE_ENV = "OMZCONV_TEST_RAY_NAMESPACE"  # "1": ray_in_namespace.py runs (set where it is run)
CACHE_ENV, OUTPUT_ENV = "OMZCONV_TEST_CACHE_DIR", "OMZCONV_TEST_OUTPUT_DIR"  # this session's workspace, for it
NAMESPACE = ('ip link set lo up && ip addr add 192.0.2.1/32 dev lo && ip -6 addr add 2001:db8::1/128 dev lo '
             '&& exec "$@"')
INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\),[^}]*?inet_pton\(AF_INET6, "([^"]+)"')
CALL = re.compile(r"^(\d+)\s+(\w+)\(")


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def outside_attempts(trace: str) -> tuple[list[str], int]:
    """strace lines (`-f`, any of TRACED) whose address is not loopback or is a DNS port (53), and the
    number of loopback ones. AF_UNIX, AF_NETLINK and a connected socket's send (no address) are fine."""
    outside, inside = [], 0
    for line in trace.splitlines():
        call = CALL.match(line)
        if not call:
            continue
        for port, address in INET.findall(line) + INET6.findall(line):
            if _loopback(address) and port != "53":
                inside += 1
            else:
                outside.append(line)
    return outside, inside


def test_outside_attempts_are_every_non_loopback_or_dns_address():
    trace = "\n".join([
        '7922  connect(23, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("169.254.169.254")}, 16)'
        ' = -1 ENETUNREACH (Network is unreachable)',
        '7922  connect(23, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16 '
        '<unfinished ...>',
        '81  connect(7, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, '
        '"2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)',
        '9  sendto(4, "\\1\\2", 2, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16)'
        ' = 2',  # a local resolver still asks the world
        '9  sendmsg(4, {msg_name={sa_family=AF_INET, sin_port=htons(123), sin_addr=inet_addr("8.8.4.4")}, '
        'msg_namelen=16}, 0) = 48',
        '9  bind(5, {sa_family=AF_INET, sin_port=htons(6379), sin_addr=inet_addr("0.0.0.0")}, 16) = 0',
        # loopback, Unix, netlink, connected: fine
        '9  connect(5, {sa_family=AF_INET, sin_port=htons(41363), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '9  connect(6, {sa_family=AF_INET6, sin6_port=htons(41363), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, '
        '"::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '9  bind(3, {sa_family=AF_INET6, sin6_port=htons(0), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", '
        '&sin6_addr), sin6_scope_id=0}, 28) = 0',
        '9  connect(8, {sa_family=AF_UNIX, sun_path="/tmp/omzconv-ray-x/session_1/sockets/plasma_store"}, 71) = 0',
        '9  sendto(3, [{nlmsg_len=20, nlmsg_type=RTM_GETADDR}], 20, 0, {sa_family=AF_NETLINK, nl_pid=0}, 12) = 20',
        '9  sendmsg(7, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="sa_family=AF_INET", iov_len=17}]}, 0)'
        ' = 17',
    ])
    outside, inside = outside_attempts(trace)
    assert [line.split("(")[0].split()[1] for line in outside] == ["connect"] * 3 + ["sendto", "sendmsg", "bind"]
    assert "8.8.4.4" in outside[4] and inside == 3


def _namespace_tools() -> None:
    """unshare, ip and strace, and the right to make a network namespace; in CI their absence fails."""
    missing = [tool for tool in ("unshare", "ip", "strace") if not shutil.which(tool)]
    reason = f"{', '.join(missing)} not installed (apt-get install util-linux iproute2 strace)" if missing else ""
    if not missing and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        reason = "cannot create a network namespace here (unshare -n needs root or CAP_SYS_ADMIN)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the Ray tests need a network namespace: {reason}", pytrace=False)
        pytest.skip(f"the Ray tests need a network namespace: {reason}")


def _ray_installed() -> None:
    """In CI (CI=true) Ray's absence is an error, elsewhere the Ray tests are skipped."""
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="pip install -e '.[test,ray]' to run the Ray tests")


def test_local_ray_verify_contacts_nothing_but_loopback(artefacts, registry, tmp_path):
    """Real verifies on a local Ray instance started by omzconv (`ray_in_namespace.py`, one instance):
    every connect/sendto/sendmsg/bind of every process is on loopback, none is DNS, and the instance's
    private folder is gone afterwards."""
    _ray_installed()
    _namespace_tools()
    from omzconv.verify import ensure_artefacts

    workspace = artefacts.workspace
    ensure_artefacts(artefacts.model(MODEL), workspace, registry, ["FP32", "FP16"])  # built here, reused there
    tmp = Path(tempfile.mkdtemp(prefix="omzconv-t-", dir="/tmp"))  # short: Ray's socket paths start here
    trace = tmp_path / "strace.txt"
    env = {**os.environ, NAMESPACE_ENV: "1", "TMPDIR": str(tmp),
           CACHE_ENV: str(workspace.cache_dir), OUTPUT_ENV: str(workspace.output_dir)}
    try:
        run = subprocess.run(
            ["unshare", "-n", "sh", "-c", NAMESPACE, "sh",
             "strace", "-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-e", f"trace={TRACED}", "-o", str(trace),
             sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "ray_in_namespace.py")],
            cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1500)
        outside, inside = outside_attempts(trace.read_text(errors="replace"))
        assert not outside, f"{len(outside)} attempts to leave loopback, e.g.:\n" + "\n".join(outside[:12])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
        assert re.search(r"\b5 passed\b", run.stdout), run.stdout[-2000:]
        assert inside > 100  # strace saw Ray's processes talk to each other
        left = sorted(p.name for p in tmp.iterdir() if p.name.startswith(("omzconv-ray-", "ray")))
        assert left == []  # the private folder is removed; nothing went to $TMPDIR/ray
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- no Ray started ------------------------------------------------------------------------------


def test_the_private_folder_is_0700_and_short_enough_for_rays_sockets(tmp_path, monkeypatch):
    import stat

    from omzconv.verify.ray_private import SESSION_SOCKET_CHARS, SOCKET_PATH_MAX, private_temp_dir

    short, long = Path(tempfile.mkdtemp(dir="/tmp")), tmp_path / ("long" * 20)
    long.mkdir()
    try:
        for base, expected in ((short, short), (long, Path("/tmp"))):  # $TMPDIR, unless Ray's paths would not fit
            monkeypatch.setattr(tempfile, "tempdir", str(base))
            made = private_temp_dir()
            made.rmdir()
            assert made.parent == expected and made.name.startswith("omzconv-ray-")
            assert len(str(made)) + SESSION_SOCKET_CHARS <= SOCKET_PATH_MAX
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        assert stat.S_IMODE(private_temp_dir().stat().st_mode) == 0o700
    finally:
        shutil.rmtree(short)


def test_a_local_instance_refuses_a_ray_imported_before_omzconv_configured_it(monkeypatch):
    _ray_installed()
    import ray

    from omzconv.verify.ray_executor import WORKER_ENV, RayExecutor
    from omzconv.verify.ray_private import LOCAL_ENV

    for name in {**WORKER_ENV, **LOCAL_ENV}:  # RayExecutor sets them: put them back afterwards
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", True)  # imported without LOCAL_ENV
    with pytest.raises(OmzconvError, match=r"^cannot start a private local Ray instance: Ray was imported in this "
                                           r"process before omzconv set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0$"):
        RayExecutor()
    assert not ray.is_initialized()


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

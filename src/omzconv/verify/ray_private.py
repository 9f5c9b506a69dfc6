"""A local Ray instance that stays on this machine: how `ray_executor` starts and stops one.

What Ray 2.60 does on its own, and what this module does about it (traced: the proof is
`tests/test_verify_ray.py::test_local_ray_verify_contacts_nothing_but_loopback`):
- Node-IP discovery connects a UDP socket to 8.8.8.8:53 and [2001:4860:4860::8888]:53 (in the driver
  and in Ray's agents), then asks the resolver for this host's name. With local-only Ray
  (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read when `ray` is imported) every process takes 127.0.0.1
  instead; the node address is 127.0.0.1, so GCS, raylet, object manager and workers listen there.
- The dashboard process starts even with `include_dashboard=False` (to run the usage-stats module), and
  that module asks the cloud metadata services (169.254.169.254, and DNS for
  metadata.google.internal) *before* it reads `RAY_USAGE_STATS_ENABLED`, unless
  `~/ray_bootstrap_config.yaml` exists. Ray's processes get a private HOME that holds an empty one.
- Session files (sockets, logs, spilled objects; Ray makes its folder world-writable) go in a private
  temporary folder (mode 0700), as do the workers' own temporary files (TMPDIR), removed when the
  instance stops, instead of the shared /tmp/ray.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omzconv.errors import OmzconvError

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # local-only Ray: node address 127.0.0.1, no discovery
LOOPBACK = "127.0.0.1"
BOOTSTRAP_CONFIG = "ray_bootstrap_config.yaml"  # its presence skips the cloud metadata lookups
SOCKET_PATH_MAX = 107  # sun_path, without its NUL
SESSION_SOCKET_CHARS = 70  # /ray/session_<date>_<time>_<us>_<pid>/sockets/plasma_store


def _check_local_only() -> None:
    """Ray reads LOCAL_ENV when it is imported: fail if this process imported it before it was set."""
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is None or getattr(constants, "ENABLE_RAY_CLUSTER", True):
        raise OmzconvError("cannot start a private local Ray instance: Ray was imported in this process before "
                           f"omzconv set {', '.join(f'{k}={v}' for k, v in LOCAL_ENV.items())}")


def private_temp_dir() -> Path:
    """A new folder only this user can enter (mkdtemp: 0700), short enough for Ray's socket paths."""
    base = tempfile.gettempdir()
    if len(base) + len("/omzconv-ray-12345678") + SESSION_SOCKET_CHARS > SOCKET_PATH_MAX:
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="omzconv-ray-", dir=base))


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Variables for the processes `ray.init` starts (they inherit them; the workers inherit the raylet's)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_local(ray: Any, **options: Any) -> Path:
    """`ray.init` a new local instance on loopback with its files in a private folder (returned).
    `ray` must have been imported with LOCAL_ENV set (the caller sets it first)."""
    _check_local_only()
    temp = private_temp_dir()
    try:
        home, tmp = temp / "home", temp / "tmp"
        home.mkdir()
        tmp.mkdir()
        (home / BOOTSTRAP_CONFIG).write_text("{}\n")  # no autoscaler: nothing to report, nothing to look up
        with _environment(HOME=str(home), TMPDIR=str(tmp)):  # workers' temporary files: in here too
            ray.init(address="local", include_dashboard=False, dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK,
                     _temp_dir=str(temp / "ray"), **options)  # Ray makes its own folder world-writable
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return temp


def stop_local(ray: Any, temp: Path) -> None:
    """Stop the instance `start_local` started and remove its folder."""
    try:
        ray.shutdown()
    finally:
        shutil.rmtree(temp, ignore_errors=True)

"""The local lab: Debian 12 systemd containers in podman, reached over real SSH."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sglfleet import host_keys
from sglfleet.errors import SglfleetError
from sglfleet.inventory import load_inventory
from sglfleet.paths import sglfleet_home
from sglfleet.topology import plan
from sglfleet.weights.generate import generate_model_dir

IMAGE = "localhost/sglfleet-lab-base:bookworm"
# Tests run their own lab beside a user's by setting SGLFLEET_LAB_NAME.
NETWORK = os.environ.get("SGLFLEET_LAB_NAME", "sglfleet-lab")
PREFIX = f"{NETWORK}-"
SHARED_MOUNT = "/srv/sglfleet-shared"
LAB_MODEL = "lab-tiny"
IMAGE_PACKAGES = (
    "systemd,systemd-sysv,python3,python3-apt,openssh-server,sudo,iproute2,"
    "ca-certificates,gnupg,procps"
)
RUN_FLAGS = (
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--systemd=always",
    "--cap-add",
    "NET_ADMIN",
)

STANDIN_DRIVER_VERSION = "580.65.06"
STANDIN_CUDA_VERSION = "13.0"

Progress = Callable[[str], None]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The stand-in NVIDIA packages and the repository builder (package data: shipped with sglfleet).
STANDIN = Path(__file__).resolve().parent / "standin"


@dataclass(frozen=True)
class LabNode:
    name: str
    container: str
    address: str


def lab_dir() -> Path:
    path = sglfleet_home() / "lab"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _podman(*args: str, check: bool = True, capture: bool = True) -> str:
    if shutil.which("podman") is None:
        raise SglfleetError(
            "podman is not installed",
            "run `apt-get install podman runc debootstrap` (scripts/setup.sh does this)",
        )
    proc = subprocess.run(["podman", *args], capture_output=capture, text=True, check=False)
    if check and proc.returncode != 0:
        raise SglfleetError(
            f"podman {' '.join(args[:3])} failed: {(proc.stderr or '').strip()[:500]}",
            "check `podman info`; the lab needs rootful podman with runc",
        )
    return proc.stdout if capture else ""


def image_exists() -> bool:
    return subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode == 0


def build_image(progress: Progress, mirror: str = "http://deb.debian.org/debian") -> None:
    """debootstrap a minimal Debian 12 with systemd and sshd, and import it (once; cached)."""
    if image_exists():
        progress(f"image {IMAGE} cached")
        return
    if shutil.which("debootstrap") is None:
        raise SglfleetError("debootstrap is not installed", "run `apt-get install debootstrap`")
    with tempfile.TemporaryDirectory(prefix="sglfleet-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        progress("debootstrap Debian 12 (about a minute)")
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={IMAGE_PACKAGES}",
                "bookworm",
                str(rootfs),
                mirror,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SglfleetError(
                f"debootstrap failed: {proc.stderr.strip()[-500:]}",
                "check that deb.debian.org is reachable",
            )
        _trust_controller_cas(rootfs)
        progress(f"import {IMAGE}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["podman", "import", "-", IMAGE], stdin=tar.stdout, capture_output=True, check=False
        )
        tar.wait()
        if imp.returncode != 0:
            raise SglfleetError("podman import failed", "check `podman info`")


def _trust_controller_cas(rootfs: Path) -> None:
    """Lab nodes trust the CAs this controller trusts (TLS-inspecting proxies, private mirrors)."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if extra:
        target = rootfs / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for cert in extra:
            shutil.copy2(cert, target / cert.name)
        subprocess.run(
            ["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True
        )
    # pip in a venv uses its own CA bundle unless told to use the system's.
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


def _ensure_key(base: Path) -> Path:
    key = base / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sglfleet-lab", "-f", str(key)],
            check=True,
        )
    return key


def containers() -> list[str]:
    out = _podman("ps", "-a", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}")
    return sorted((n for n in out.split() if n.startswith(PREFIX)), key=_node_index)


def _node_index(container: str) -> int:
    try:
        return int(container.rsplit("-", 1)[-1])
    except ValueError:
        return 0


def _address(container: str) -> str:
    data = json.loads(_podman("inspect", container))
    networks = data[0]["NetworkSettings"]["Networks"]
    return str(networks[NETWORK]["IPAddress"])


def _wait_ssh(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SglfleetError(f"sshd on {address} did not answer in {timeout:.0f}s", "see `podman logs`")


def up(nodes: int, gpus_per_node: int, progress: Progress) -> dict[str, Any]:
    """Start (or extend) the lab and write its inventory. Idempotent."""
    if nodes < 1:
        raise SglfleetError("the lab needs at least one node", "pass --nodes 1 or more")
    base = lab_dir()
    build_image(progress)
    key = _ensure_key(base)
    shared = base / "shared"
    shared.mkdir(exist_ok=True)
    if subprocess.run(["podman", "network", "exists", NETWORK], check=False).returncode != 0:
        _podman("network", "create", NETWORK)
    existing = set(containers())
    for index in range(1, nodes + 1):
        name = f"{PREFIX}{index}"
        if name in existing:
            state = _podman("inspect", "--format", "{{.State.Running}}", name).strip()
            if state != "true":
                _podman("start", name)
            continue
        progress(f"start container {name}")
        _podman(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            f"lab-{index}",
            "--network",
            NETWORK,
            *RUN_FLAGS,
            "-v",
            f"{shared}:{SHARED_MOUNT}",
            IMAGE,
            "/sbin/init",
        )
        _podman("exec", name, "mkdir", "-p", "-m", "0700", "/root/.ssh")
        _podman("cp", f"{key}.pub", f"{name}:/root/.ssh/authorized_keys")
        _podman("exec", name, "chown", "root:root", "/root/.ssh/authorized_keys")
        _podman("exec", name, "chmod", "0600", "/root/.ssh/authorized_keys")
    lab_nodes = [
        LabNode(f"lab-{_node_index(c)}", c, _address(c))
        for c in containers()
        if _node_index(c) <= nodes
    ]
    for node in lab_nodes:
        _wait_ssh(node.address)
    _ensure_model(shared, progress)
    _ensure_nvidia_standin_repo(shared, progress)
    for node in lab_nodes:
        _add_standin_distribution_source(node.container)
    inventory = write_inventory(base, lab_nodes, gpus_per_node, key)
    record_host_keys(inventory, lab_nodes)
    progress(f"inventory {inventory}")
    return status()


def record_host_keys(inventory: Path, nodes: list[LabNode]) -> Path:
    """Pin each node's SSH host keys in the lab inventory's known_hosts, read from the container
    itself (podman, not the network), so the lab's runs check host keys like any other."""
    known_hosts = host_keys.known_hosts_file(inventory)
    for node in nodes:
        keys = _podman("exec", node.container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
        pinned = [" ".join(line.split()[:2]) for line in keys.splitlines() if line.strip()]
        if not pinned:
            raise SglfleetError(
                f"lab node {node.name} has no SSH host key in /etc/ssh",
                "run `sglfleet lab down` and `sglfleet lab up` to recreate it",
            )
        host_keys.replace(known_hosts, node.address, None, pinned)
    return known_hosts


def _ensure_model(shared: Path, progress: Progress) -> None:
    target = shared / "models" / LAB_MODEL
    if (target / "config.json").exists():
        return
    progress(f"generate model directory {LAB_MODEL} on the lab's shared storage")

    target.parent.mkdir(parents=True, exist_ok=True)
    generate_model_dir(target, name=LAB_MODEL, files=2, file_mb=4)


def _ensure_nvidia_standin_repo(shared: Path, progress: Progress) -> None:
    """A signed apt repository of stand-in NVIDIA packages on the lab's shared storage.

    NVIDIA's repositories cannot be reached from here; the node-stack roles install, pin and hold
    these packages for real (they hold no driver and no nvidia-smi: see standin/README.md).
    """
    repo = shared / "nvidia-repo"
    # A lab built before the stand-in distribution archive (kernel headers) existed is rebuilt.
    if all((repo / d / "InRelease").exists() for d in ("debian12/x86_64", "distribution/debian12")):
        return
    progress("build the stand-in NVIDIA apt repository (NVIDIA's cannot be reached)")
    fixtures = STANDIN
    proc = subprocess.run(
        ["bash", str(fixtures / "build-repo.sh"), str(repo), "debian12"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SglfleetError(
            f"building the stand-in NVIDIA repository failed: {proc.stderr.strip()[-500:]}",
            "install gnupg, apt-utils and dpkg-dev (scripts/setup.sh does)",
        )
    shutil.copy2(fixtures / "dcgm-exporter-standin", repo / "dcgm-exporter")


def _add_standin_distribution_source(container: str) -> None:
    """The stand-in of the distribution's own archive as an apt source on a lab node.

    On a real node the distribution's archive carries the running kernel's headers (installed
    before the driver) and its own nvidia packages (which the driver pin must refuse). The lab
    image has no headers for the host's kernel, so the stand-in archive provides both; it is
    the node's setup, not sglfleet's, as Debian's own sources are on a real node.
    """
    repo = f"{SHARED_MOUNT}/nvidia-repo/distribution"
    source = (
        "deb [signed-by=/usr/share/keyrings/sglfleet-standin-distribution.gpg] "
        f"file:{repo}/debian12/ /\n"
    )
    _podman(
        "exec",
        container,
        "sh",
        "-c",
        f"cp {repo}/debian12.gpg /usr/share/keyrings/sglfleet-standin-distribution.gpg && "
        f"printf '{source}' > /etc/apt/sources.list.d/sglfleet-standin-distribution.list && "
        # Read just this source now: the image's lists may be fresh enough that apt's
        # cache_valid_time skips an update, as a real node's lists already hold its archive.
        "apt-get update -qq -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
        " -o Dir::Etc::sourcelist=sources.list.d/sglfleet-standin-distribution.list",
    )


def _api_key(base: Path) -> str:
    secrets_file = base / "inventory" / "group_vars" / "all" / "secrets.yml"
    if secrets_file.exists():
        data = yaml.safe_load(secrets_file.read_text()) or {}
        if data.get("sglfleet_api_key"):
            return str(data["sglfleet_api_key"])
    return "sk-lab-" + secrets.token_urlsafe(24)


def lab_inventory_vars(
    nodes: list[LabNode], gpus_per_node: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """hosts.yml and group_vars for a lab of these nodes: a 2-node TP group plus replicas."""
    hosts: dict[str, Any] = {}
    for node in nodes:
        hosts[node.name] = {
            "ansible_host": node.address,
            "sglfleet_fabric_address": node.address,
            "sglfleet_fabric_interface": "eth0",
            "sglfleet_gpu_count": gpus_per_node,
            "sglfleet_gpu_model": "SIMULATED-80GB",
            "sglfleet_simulated_gpus": True,
        }
    names = [n.name for n in nodes]
    groups: list[dict[str, Any]] = []
    if len(names) >= 2:
        groups.append(
            {
                "name": "tp",
                "model": LAB_MODEL,
                "hosts": names[:2],
                "tp": 2 * gpus_per_node,
                "port": 30000,
                "dist_init_port": 20000,
            }
        )
        rest = names[2:]
    else:
        rest = names
    if rest:
        groups.append(
            {
                "name": "replica",
                "model": LAB_MODEL,
                "hosts": rest,
                "nodes_per_replica": 1,
                "tp": gpus_per_node,
                "port": 30000,
            }
        )
    router_host = names[-1]
    inventory = {
        "all": {
            # Host keys are checked like on any cluster: `sglfleet lab up` pins them in the
            # inventory's .sglfleet/known_hosts (record_host_keys).
            "vars": {"ansible_user": "root"},
            "children": {
                "sglfleet_gpu_nodes": {"hosts": hosts},
                "sglfleet_routers": {"hosts": {router_host: None}},
            },
        }
    }
    cluster = {
        "sglfleet_cluster_name": "lab",
        "sglfleet_engine": "rehearsal",
        "sglfleet_models": {
            LAB_MODEL: {
                "hub": "mirror",
                "mirror_path": f"{SHARED_MOUNT}/models/{LAB_MODEL}",
                "weights_gb": 0.01,
                "served_name": LAB_MODEL,
                "revision": "generated",
            }
        },
        "sglfleet_serving_groups": groups,
        "sglfleet_router": {"host": router_host, "port": 8000},
        # The lab's shared storage is a host folder bind-mounted into every container.
        "shared_storage_mounts": [{"path": SHARED_MOUNT, "fstype": "none", "preexisting": True}],
        # The node stack installs stand-in NVIDIA packages from the lab's own signed repository.
        "nvidia_driver_repo_url": f"file://{SHARED_MOUNT}/nvidia-repo",
        "nvidia_driver_version": STANDIN_DRIVER_VERSION,
        "cuda_toolkit_version": STANDIN_CUDA_VERSION,
        "dcgm_exporter_url": f"file://{SHARED_MOUNT}/nvidia-repo/dcgm-exporter",
        "dcgm_exporter_checksum": _sha256(STANDIN / "dcgm-exporter-standin"),
    }
    return inventory, cluster


def write_inventory(base: Path, nodes: list[LabNode], gpus_per_node: int, key: Path) -> Path:
    inv_dir = base / "inventory"
    group_vars = inv_dir / "group_vars" / "all"
    group_vars.mkdir(parents=True, exist_ok=True)
    api_key = _api_key(base)
    hosts, cluster = lab_inventory_vars(nodes, gpus_per_node)
    hosts["all"]["vars"]["ansible_ssh_private_key_file"] = str(key)
    header = "---\n# Written by `sglfleet lab up`; rewritten on every lab up.\n"
    (inv_dir / "hosts.yml").write_text(header + yaml.safe_dump(hosts, sort_keys=False))
    (group_vars / "lab.yml").write_text(header + yaml.safe_dump(cluster, sort_keys=False))
    secret_path = group_vars / "secrets.yml"
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(header + yaml.safe_dump({"sglfleet_api_key": api_key}))
    (base / "lab.json").write_text(
        json.dumps({"nodes": len(nodes), "gpus_per_node": gpus_per_node}) + "\n"
    )
    return inv_dir


def status() -> dict[str, Any]:
    base = sglfleet_home() / "lab"
    inv_dir = base / "inventory"
    nodes = []
    for container in containers() if shutil.which("podman") else []:
        try:
            address = _address(container)
        except (SglfleetError, KeyError, IndexError):
            address = ""
        nodes.append(
            {"name": f"lab-{_node_index(container)}", "container": container, "address": address}
        )
    endpoint = None
    api_key = None
    if (inv_dir / "hosts.yml").exists():
        inventory = load_inventory(inv_dir)
        endpoint = plan(inventory).endpoint
        api_key = inventory.api_key.reveal() if inventory.api_key else None
    return {
        "inventory": str(inv_dir) if inv_dir.exists() else None,
        "endpoint": endpoint,
        "api_key": api_key,
        "nodes": nodes,
    }


def down(keep_image: bool, progress: Progress) -> None:
    """Remove the lab's containers, network, inventory, key and shared folder (image: cache)."""
    for container in containers():
        progress(f"remove {container}")
        _podman("rm", "-f", "-t", "5", container)
    if subprocess.run(["podman", "network", "exists", NETWORK], check=False).returncode == 0:
        _podman("network", "rm", NETWORK)
    base = sglfleet_home() / "lab"
    if base.exists():
        shutil.rmtree(base)
    if not keep_image and image_exists():
        progress(f"remove image {IMAGE}")
        _podman("rmi", IMAGE)

"""GPU preflight: judge one node's raw nvidia-smi data against what the inventory says. No I/O.

`playbooks/gpu_preflight.yml` writes one JSON file per node (the raw shape is documented in
docs/preflight-gpu.md): the XML of `nvidia-smi -q -x`, the text of `nvidia-smi nvlink -s`, the
fabric manager's service state, the NVSwitch PCI functions found and the kernel log's Xid lines.
`expected_for_host` reads what the inventory promises, `evaluate` compares the two and returns one
`Check` per question, each failure with the fix an operator should apply.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sglfleet.cluster import gpu_memory_gb
from sglfleet.models import Inventory

Status = Literal["ok", "fail", "warn", "skip"]

# Observed GPU memory (GiB, from nvidia-smi's MiB) may sit this far below the vendor's figure:
# the driver reserves some memory, e.g. an H100 80GB reports 81559 MiB = 79.6 GiB.
MEMORY_TOLERANCE = 0.05

# Xid -> (usual meaning, status, what to do). From NVIDIA's Xid catalog, in an operator's words.
XID_CATALOG: dict[int, tuple[str, Status, str]] = {
    13: (
        "Graphics Engine Exception: usually an application fault (illegal memory access)",
        "warn",
        "check the application that ran at that time; if it repeats across applications, "
        "run `dcgmi diag -r 3` on the GPU",
    ),
    31: (
        "GPU memory page fault: usually an application touching an invalid address",
        "warn",
        "check the application's logs; repeated faults with known-good software mean a driver "
        "or hardware problem: run `dcgmi diag -r 3`",
    ),
    43: (
        "GPU stopped processing: a channel was reset after an application fault",
        "warn",
        "usually harmless for other work; look at the application that was killed",
    ),
    45: (
        "Preemptive cleanup after an earlier error or a killed process",
        "warn",
        "look for the Xid that came before it; on its own it needs no action",
    ),
    48: (
        "Double-bit (uncorrectable) ECC error",
        "fail",
        "drain the node, reset the GPU (`nvidia-smi -r -i N`) or reboot; "
        "if it repeats, RMA the GPU",
    ),
    63: (
        "ECC page retirement / row remapping event recorded",
        "warn",
        "reset the GPU or reboot the node when drained so that the remapping takes effect",
    ),
    64: (
        "ECC page retirement / row remapping failed to record",
        "fail",
        "drain the node and RMA the GPU: its memory can no longer be repaired in the field",
    ),
    74: (
        "NVLink error",
        "fail",
        "drain the node, check `nvidia-smi nvlink -e` and the fabric manager log, reset the GPUs "
        "or reboot; if it repeats, have the baseboard/NVLink checked by the vendor",
    ),
    79: (
        "GPU has fallen off the bus",
        "fail",
        "drain the node and power-cycle it; check PCIe seating, power and temperatures; "
        "if it repeats, RMA the GPU or baseboard",
    ),
    92: (
        "High single-bit ECC error rate",
        "warn",
        "watch the ECC counters (`nvidia-smi -q -d ECC`); plan a replacement if the rate grows",
    ),
    94: (
        "Contained ECC error: the affected application was stopped, the GPU carries on",
        "warn",
        "restart the affected application; reset the GPU when drained to remap the row",
    ),
    95: (
        "Uncontained ECC error: every application on the GPU was affected",
        "fail",
        "drain the node and reset the GPU (`nvidia-smi -r -i N`) or reboot before serving again",
    ),
    119: (
        "GSP RPC timeout: the GPU System Processor stopped answering",
        "fail",
        "drain the node and reboot it; if it repeats, update the driver within the pinned branch "
        "and report it to NVIDIA with `nvidia-bug-report.sh`",
    ),
}

_XID_LINE = re.compile(r"NVRM: Xid \(PCI:(?P<pci>[0-9A-Fa-f:.]+)\): (?P<xid>\d+)")
_NVLINK_GPU = re.compile(r"^GPU (?P<index>\d+): (?P<name>.*?)(?: \(UUID: .*\))?$")
_NVLINK_LINK = re.compile(r"^\s*Link (?P<link>\d+): (?P<state>.+?)\s*$")
_MIB = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*MiB")


@dataclass(frozen=True)
class ExpectedNode:
    """What the inventory promises about one node's GPUs and driver."""

    host: str
    gpu_count: int
    gpu_model: str | None
    gpu_memory_gb: float | None
    driver_branch: str | None
    driver_version: str | None
    simulated: bool = False


@dataclass(frozen=True)
class Check:
    """One preflight question about one node, answered."""

    host: str
    check: str
    status: Status
    observed: str
    expected: str
    fix: str = ""


@dataclass(frozen=True)
class Gpu:
    """The fields of one `<gpu>` element of `nvidia-smi -q -x` that the checks read."""

    index: int
    pci: str
    name: str
    memory_mib: float | None
    persistence: str
    ecc_current: str
    ecc_pending: str
    ecc_uncorrectable_volatile: int | None
    ecc_uncorrectable_aggregate: int | None
    remapped_pending: str
    remapped_failure: str
    retired_pending: str
    pcie_gen_current: int | None
    pcie_gen_max: int | None
    pcie_width_current: int | None
    pcie_width_max: int | None
    fabric_state: str
    fabric_status: str


def _text(node: ET.Element | None, path: str, default: str = "N/A") -> str:
    if node is None:
        return default
    found = node.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def _int(value: str) -> int | None:
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _sum_uncorrectable(block: ET.Element | None) -> int | None:
    """Sum the uncorrectable counters of a volatile/aggregate ECC block (Hopper or older names)."""
    if block is None:
        return None
    values = [
        _int(child.text)
        for child in block
        if "uncorrectable" in child.tag.lower() and child.text is not None
    ]
    double_bit = block.find("double_bit/total")
    if double_bit is not None and double_bit.text is not None:
        values.append(_int(double_bit.text))
    counted = [v for v in values if v is not None]
    return sum(counted) if counted else None


def parse_gpus(xml_text: str) -> tuple[str | None, list[Gpu]]:
    """The driver version and GPUs of `nvidia-smi -q -x` output; ValueError if unreadable."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"nvidia-smi XML does not parse: {exc}") from None
    driver = _text(root, "driver_version", "") or None
    gpus: list[Gpu] = []
    for index, gpu in enumerate(root.findall("gpu")):
        memory = _MIB.search(_text(gpu, "fb_memory_usage/total", ""))
        link = gpu.find("pci/pci_gpu_link_info")
        ecc = gpu.find("ecc_errors")
        gpus.append(
            Gpu(
                index=_int(_text(gpu, "minor_number", str(index))) or index,
                pci=gpu.get("id", _text(gpu, "pci/pci_bus_id", "?")),
                name=_text(gpu, "product_name", "?"),
                memory_mib=float(memory.group("value")) if memory else None,
                persistence=_text(gpu, "persistence_mode"),
                ecc_current=_text(gpu, "ecc_mode/current_ecc"),
                ecc_pending=_text(gpu, "ecc_mode/pending_ecc"),
                ecc_uncorrectable_volatile=_sum_uncorrectable(
                    ecc.find("volatile") if ecc is not None else None
                ),
                ecc_uncorrectable_aggregate=_sum_uncorrectable(
                    ecc.find("aggregate") if ecc is not None else None
                ),
                remapped_pending=_text(gpu, "remapped_rows/remapped_row_pending"),
                remapped_failure=_text(gpu, "remapped_rows/remapped_row_failure"),
                retired_pending=_text(gpu, "retired_pages/pending_retirement"),
                pcie_gen_current=_int(_text(link, "pcie_gen/current_link_gen", "")),
                pcie_gen_max=_int(_text(link, "pcie_gen/max_link_gen", "")),
                pcie_width_current=_int(_text(link, "link_widths/current_link_width", "")),
                pcie_width_max=_int(_text(link, "link_widths/max_link_width", "")),
                fabric_state=_text(gpu, "fabric/state"),
                fabric_status=_text(gpu, "fabric/status"),
            )
        )
    return driver, gpus


def parse_nvlink(text: str) -> dict[int, dict[int, str]]:
    """`nvidia-smi nvlink -s` -> {gpu index: {link: state text}}; `<inactive>` marks a down link."""
    links: dict[int, dict[int, str]] = {}
    current: int | None = None
    for line in text.splitlines():
        gpu = _NVLINK_GPU.match(line.strip())
        if gpu:
            current = int(gpu.group("index"))
            links.setdefault(current, {})
            continue
        link = _NVLINK_LINK.match(line)
        if link and current is not None:
            links[current][int(link.group("link"))] = link.group("state")
    return links


def parse_xids(lines: Iterable[str]) -> list[tuple[str, int, str]]:
    """Kernel log lines -> [(PCI address, Xid, line)] for each `NVRM: Xid` line."""
    found = []
    for line in lines:
        match = _XID_LINE.search(line)
        if match:
            found.append((match.group("pci"), int(match.group("xid")), line.strip()))
    return found


def _model_family(model: str) -> tuple[str, set[str]]:
    """'H100-SXM5-80GB' -> ('H100', {'SXM'}); 'NVIDIA H100 NVL' -> ('H100', {'NVL'})."""
    upper = model.upper().replace("NVIDIA", " ")
    tokens = [t for t in re.split(r"[\s\-_/]+", upper) if t]
    named = [t for t in tokens if re.match(r"^[A-Z]+\d+[A-Z]*$", t)]
    family = named[0] if named else (tokens[0] if tokens else "")
    variants = {v for v in ("NVL", "PCIE") if any(t.startswith(v) for t in tokens)}
    return family, variants


def model_matches(expected: str, observed: str) -> bool:
    """True when nvidia-smi's product name is the inventory's GPU model (family and variant)."""
    exp_family, exp_variants = _model_family(expected)
    obs_family, obs_variants = _model_family(observed)
    return exp_family == obs_family and exp_variants == obs_variants


def expected_for_host(inventory: Inventory, host: str) -> ExpectedNode:
    """What the inventory says of `host`: GPUs from its Host, the driver pin from its vars."""
    node = inventory.hosts[host]
    branch = node.vars.get("nvidia_driver_branch")
    version = node.vars.get("nvidia_driver_version")
    return ExpectedNode(
        host=host,
        gpu_count=node.gpu_count,
        gpu_model=node.gpu_model,
        gpu_memory_gb=gpu_memory_gb(node),
        driver_branch=str(branch) if branch not in (None, "") else None,
        driver_version=str(version) if version not in (None, "") else None,
        simulated=node.simulated_gpus,
    )


def _check(
    host: str, name: str, status: Status, observed: Any, expected: Any, fix: str = ""
) -> Check:
    return Check(host, name, status, str(observed), str(expected), fix if status != "ok" else "")


def _gpu_list(gpus: Sequence[Gpu], predicate: Any) -> str:
    return ", ".join(f"GPU{g.index}" for g in gpus if predicate(g))


def _inventory_checks(host: str, gpus: Sequence[Gpu], expected: ExpectedNode) -> list[Check]:
    checks = [
        _check(
            host,
            "gpu_count",
            "ok" if len(gpus) == expected.gpu_count else "fail",
            len(gpus),
            expected.gpu_count,
            "a GPU is missing from the bus or the inventory is wrong: check `nvidia-smi -L` and "
            "`lspci -d 10de:`, reseat/replace the GPU, or correct sglfleet_gpu_count",
        )
    ]
    names = sorted({g.name for g in gpus})
    if not expected.gpu_model:
        checks.append(_check(host, "gpu_model", "skip", ", ".join(names), "not set"))
    else:
        bad = [g.name for g in gpus if not model_matches(expected.gpu_model, g.name)]
        checks.append(
            _check(
                host,
                "gpu_model",
                "fail" if bad or not gpus else "ok",
                ", ".join(names) or "no GPU",
                expected.gpu_model,
                "set sglfleet_gpu_model to the model this node really has, or move the node to "
                "the group that matches its hardware",
            )
        )
    sizes = sorted({g.memory_mib for g in gpus if g.memory_mib is not None})
    if expected.gpu_memory_gb is None or not sizes:
        checks.append(_check(host, "gpu_memory", "skip", sizes or "unknown", "not known"))
    else:
        low = expected.gpu_memory_gb * (1 - MEMORY_TOLERANCE)
        high = expected.gpu_memory_gb * (1 + MEMORY_TOLERANCE)
        observed_gib = [mib / 1024 for mib in sizes]
        ok = all(low <= gib <= high for gib in observed_gib)
        checks.append(
            _check(
                host,
                "gpu_memory",
                "ok" if ok else "fail",
                ", ".join(f"{gib:.1f} GiB" for gib in observed_gib),
                f"{expected.gpu_memory_gb:g} GB per GPU",
                "correct sglfleet_gpu_memory_gb / sglfleet_gpu_model; a GPU with less memory than "
                "its siblings may have MIG enabled (`nvidia-smi -mig 0`) or need an RMA",
            )
        )
    return checks


def _driver_check(host: str, driver: str | None, expected: ExpectedNode) -> Check:
    fix = (
        "install the pinned driver with the node stack (`ansible-playbook playbooks/node_stack.yml "
        "-e nvidia_driver_reboot_allowed=true --limit HOST`) or change nvidia_driver_branch / "
        "nvidia_driver_version in the inventory to the driver you mean to run"
    ).replace("HOST", host)
    if expected.driver_version:
        status: Status = "ok" if driver == expected.driver_version else "fail"
        return _check(host, "driver_version", status, driver, expected.driver_version, fix)
    if expected.driver_branch:
        branch = (driver or "").split(".")[0]
        status = "ok" if branch == expected.driver_branch else "fail"
        return _check(
            host, "driver_version", status, driver, f"branch {expected.driver_branch}.x", fix
        )
    return _check(host, "driver_version", "skip", driver, "no pin in the inventory")


def _gpu_health_checks(host: str, gpus: Sequence[Gpu]) -> list[Check]:
    checks = []
    off = _gpu_list(gpus, lambda g: g.persistence.lower() != "enabled")
    checks.append(
        _check(
            host,
            "persistence_mode",
            "warn" if off else "ok",
            f"disabled on {off}" if off else "enabled on all",
            "enabled",
            "enable nvidia-persistenced (the nvidia_driver role does) so the driver stays "
            "initialised between jobs: `systemctl enable --now nvidia-persistenced`",
        )
    )
    ecc_off = _gpu_list(gpus, lambda g: g.ecc_current.lower() not in ("enabled", "n/a"))
    ecc_pending = _gpu_list(gpus, lambda g: g.ecc_pending.lower() != g.ecc_current.lower())
    checks.append(
        _check(
            host,
            "ecc_mode",
            "fail" if ecc_off else ("warn" if ecc_pending else "ok"),
            f"disabled on {ecc_off}"
            if ecc_off
            else (f"change pending on {ecc_pending}" if ecc_pending else "enabled on all"),
            "enabled",
            "enable ECC (`nvidia-smi -e 1`) and reboot the node, drained"
            if ecc_off
            else "reboot the node (drained) to apply the pending ECC mode",
        )
    )
    volatile = {g.index: g.ecc_uncorrectable_volatile or 0 for g in gpus}
    aggregate = {g.index: g.ecc_uncorrectable_aggregate or 0 for g in gpus}
    bad_volatile = {i: n for i, n in volatile.items() if n}
    bad_aggregate = {i: n for i, n in aggregate.items() if n}
    if bad_volatile:
        status: Status = "fail"
        observed = "volatile: " + ", ".join(f"GPU{i}={n}" for i, n in bad_volatile.items())
        fix = (
            "drain the node, reset the affected GPUs (`nvidia-smi -r -i N`) or reboot, then run "
            "`dcgmi diag -r 3`; RMA a GPU whose errors come back"
        )
    elif bad_aggregate:
        status = "warn"
        observed = "aggregate only: " + ", ".join(f"GPU{i}={n}" for i, n in bad_aggregate.items())
        fix = "past errors, none since the last reset: watch the counters, plan an RMA if they grow"
    else:
        status, observed, fix = "ok", "0 on all", ""
    checks.append(_check(host, "ecc_uncorrectable_errors", status, observed, 0, fix))

    failed_remap = _gpu_list(gpus, lambda g: g.remapped_failure.lower() == "yes")
    pending = _gpu_list(
        gpus,
        lambda g: g.remapped_pending.lower() == "yes" or g.retired_pending.lower() == "yes",
    )
    if failed_remap:
        checks.append(
            _check(
                host,
                "remapped_rows",
                "fail",
                f"row remapping failed on {failed_remap}",
                "no failure, nothing pending",
                "drain the node and RMA the GPU: it ran out of spare rows",
            )
        )
    else:
        checks.append(
            _check(
                host,
                "remapped_rows",
                "fail" if pending else "ok",
                f"remapping pending on {pending}" if pending else "nothing pending",
                "nothing pending",
                "drain the node and reset the GPU (`nvidia-smi -r -i N`) or reboot to apply the "
                "pending row remapping",
            )
        )
    return checks


def _pcie_check(host: str, gpus: Sequence[Gpu]) -> Check:
    narrow = [
        g
        for g in gpus
        if g.pcie_width_current is not None
        and g.pcie_width_max is not None
        and g.pcie_width_current < g.pcie_width_max
    ]
    slow = [
        g
        for g in gpus
        if g.pcie_gen_current is not None
        and g.pcie_gen_max is not None
        and g.pcie_gen_current < g.pcie_gen_max
    ]
    if not any(g.pcie_gen_max for g in gpus):
        return _check(host, "pcie_link", "skip", "not reported", "current = max")
    observed = "; ".join(
        f"GPU{g.index} gen {g.pcie_gen_current}/{g.pcie_gen_max} x{g.pcie_width_current}/"
        f"x{g.pcie_width_max}"
        for g in (narrow or slow)
    )
    if narrow:
        return _check(
            host,
            "pcie_link",
            "fail",
            observed,
            "current width = max width",
            "a link trained narrower than its slot: reseat the GPU or riser, check the slot's "
            "bifurcation settings in the BIOS, then reboot",
        )
    if slow:
        return _check(
            host,
            "pcie_link",
            "warn",
            observed,
            "current gen = max gen",
            "an idle GPU lowers its link speed to save power: run again under load; if it stays "
            "low, check the BIOS PCIe speed setting and reseat the GPU",
        )
    first = gpus[0]
    return _check(
        host,
        "pcie_link",
        "ok",
        f"gen {first.pcie_gen_current} x{first.pcie_width_current} on all",
        "current = max",
    )


def _nvswitch_present(raw: Mapping[str, Any], gpus: Sequence[Gpu]) -> bool:
    if raw.get("nvswitch_pci_ids"):
        return True
    return any(g.fabric_state.lower() not in ("n/a", "") for g in gpus)


NO_SYSTEMD = "no systemd on this host: cannot read the service state"


def service_state(raw_state: str) -> str:
    """The fabric manager's service state as a person reads it, not Ansible's module message.

    Where PID 1 is not systemd the playbook records `no systemd`; older runs carry the module's
    own error ('Failed to find required executable "systemctl" in paths: ...').
    """
    text = raw_state.strip()
    lowered = text.lower()
    if lowered.startswith("no systemd") or (
        "systemctl" in lowered and ("not found" in lowered or "failed to find" in lowered)
    ):
        return NO_SYSTEMD
    if len(text) > 120:
        return text[:117] + "..."
    return text or "unknown"


def _fabric_check(host: str, raw: Mapping[str, Any], gpus: Sequence[Gpu]) -> Check:
    manager = raw.get("fabric_manager") or {}
    service = service_state(str(manager.get("service", "unknown")))
    if not _nvswitch_present(raw, gpus):
        return _check(
            host, "fabric_manager", "skip", f"no NVSwitch found (service {service})", "n/a"
        )
    states = sorted({f"{g.fabric_state}/{g.fabric_status}" for g in gpus})
    done = all(g.fabric_state == "Completed" and g.fabric_status == "Success" for g in gpus)
    observed = f"fabric {', '.join(states)}; nvidia-fabricmanager {service}"
    return _check(
        host,
        "fabric_manager",
        "ok" if done else "fail",
        observed,
        "Completed/Success on every GPU",
        "start the fabric manager (`systemctl enable --now nvidia-fabricmanager`); its version "
        "must equal the driver's (the fabric_manager role pins it); read "
        "/var/log/fabricmanager.log, then reset the GPUs or reboot",
    )


def _nvlink_check(host: str, raw: Mapping[str, Any], gpus: Sequence[Gpu]) -> Check:
    nvlink = raw.get("nvlink") or {}
    if int(nvlink.get("rc", 0) or 0) != 0 and not nvlink.get("stdout"):
        return _check(host, "nvlink", "skip", "nvidia-smi nvlink failed", "links active")
    links = parse_nvlink(str(nvlink.get("stdout", "")))
    total = sum(len(v) for v in links.values())
    if total == 0:
        reason = (
            "no NVLink reported (one GPU: no NVLink peer)"
            if len(gpus) == 1
            else "no NVLink reported (PCIe-only GPUs)"
        )
        return _check(host, "nvlink", "skip", reason, "n/a")
    inactive = {
        gpu: sorted(link for link, state in per_gpu.items() if "inactive" in state.lower())
        for gpu, per_gpu in links.items()
    }
    inactive = {gpu: down for gpu, down in inactive.items() if down}
    down_count = sum(len(v) for v in inactive.values())
    active = total - down_count
    if not inactive:
        return _check(host, "nvlink", "ok", f"{total} links active on {len(links)} GPUs", "all")
    observed = f"{active}/{total} active; inactive: " + "; ".join(
        f"GPU{gpu} links {','.join(str(x) for x in down)}" for gpu, down in inactive.items()
    )
    status: Status = "fail" if active or _nvswitch_present(raw, gpus) else "warn"
    return _check(
        host,
        "nvlink",
        status,
        observed,
        "every link active",
        "check the fabric manager first; then `nvidia-smi nvlink -e` for error counters; reset "
        "the GPUs or reboot; links that stay down need the vendor (baseboard/NVSwitch)",
    )


def _xid_check(host: str, raw: Mapping[str, Any]) -> Check:
    kernel = raw.get("kernel_log") or {}
    hours = str(raw.get("xid_window_hours", "?"))
    window = f"the last {hours} h" if hours.isdigit() else hours
    none_seen = f"none in {window}" if hours.isdigit() else f"none {window}"
    if kernel.get("source") in (None, "none"):
        return _check(
            host,
            "xid_errors",
            "skip",
            "kernel log not readable",
            f"no Xid, {window}",
        )
    xids = parse_xids(str(line) for line in kernel.get("lines") or [])
    if not xids:
        return _check(host, "xid_errors", "ok", none_seen, f"no Xid, {window}")
    counts: dict[int, list[str]] = {}
    for pci, xid, _line in xids:
        counts.setdefault(xid, [])
        if pci not in counts[xid]:
            counts[xid].append(pci)
    parts, fixes = [], []
    worst: Status = "warn"
    for xid in sorted(counts):
        meaning, status, fix = XID_CATALOG.get(
            xid,
            (
                "not in sglfleet's list",
                "warn",
                "look it up in NVIDIA's Xid catalog (docs.nvidia.com/deploy/xid-errors)",
            ),
        )
        if status == "fail":
            worst = "fail"
        parts.append(f"Xid {xid} ({meaning}) on {', '.join(counts[xid])}")
        fixes.append(f"Xid {xid}: {fix}")
    return _check(
        host, "xid_errors", worst, "; ".join(parts), f"no Xid, {window}", " | ".join(fixes)
    )


def evaluate(raw: Mapping[str, Any], expected: ExpectedNode) -> list[Check]:
    """Every GPU preflight check of one node: its raw collected data against the inventory."""
    host = expected.host
    if raw.get("simulated") or expected.simulated:
        return [
            _check(
                host,
                "gpu",
                "skip",
                "simulated GPUs (sglfleet_simulated_gpus: true)",
                "real GPUs",
                "",
            )
        ]
    smi = raw.get("nvidia_smi") or {}
    xml_text = str(smi.get("xml") or "")
    if int(smi.get("rc", 1) if smi.get("rc") is not None else 1) != 0 or not xml_text:
        reason = str(smi.get("stderr") or smi.get("stdout") or "no output").strip()[:200]
        return [
            _check(
                host,
                "nvidia_smi",
                "fail",
                f"nvidia-smi failed: {reason}",
                "nvidia-smi answers",
                "the driver is not loaded: run the node stack, reboot if it reports a pending "
                "reboot, and check `dmesg | grep -i nvrm`",
            ),
            _xid_check(host, raw),
        ]
    try:
        driver, gpus = parse_gpus(xml_text)
    except ValueError as exc:
        return [_check(host, "nvidia_smi", "fail", str(exc), "readable XML", "rerun the preflight")]
    checks = _inventory_checks(host, gpus, expected)
    checks.append(_driver_check(host, driver, expected))
    if gpus:
        checks += _gpu_health_checks(host, gpus)
        checks.append(_pcie_check(host, gpus))
    checks.append(_fabric_check(host, raw, gpus))
    checks.append(_nvlink_check(host, raw, gpus))
    checks.append(_xid_check(host, raw))
    return checks


def summarize(checks: Iterable[Check]) -> dict[str, Any]:
    """The `sglfleet preflight --json` shape: checks grouped by node, and the number of failures."""
    nodes: dict[str, list[dict[str, str]]] = {}
    failed = 0
    for check in checks:
        nodes.setdefault(check.host, []).append(
            {
                "check": check.check,
                "status": check.status,
                "observed": check.observed,
                "expected": check.expected,
                "fix": check.fix,
            }
        )
        failed += check.status == "fail"
    return {
        "nodes": [{"host": host, "checks": items} for host, items in nodes.items()],
        "failed": failed,
    }

"""NCCL preflight verdicts: all-reduce bus bandwidth against line rates, likely cause named.

Pure and typed. Input is the JSON that roles/nccl_tuning/files/sglfleet-allreduce-bench prints (one
document per node, or per multi-node group as seen from rank 0); output is a list of checks, a table
by message size and a summary dict for `sglfleet preflight --nccl --json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sglfleet import hardware

Status = Literal["ok", "warn", "fail", "skip"]
Scope = Literal["node", "group"]

MIB = 1 << 20
GIB = 1 << 30

DEFAULT_MIN_FRACTION = 0.6
DEFAULT_LARGE_MESSAGE_BYTES = 64 * MIB
DEFAULT_MIN_DEV_SHM_BYTES = 1 * GIB


@dataclass(frozen=True)
class Thresholds:
    """What counts as healthy. Line rates are per direction, in GB/s (decimal)."""

    nvlink_gbps: float | None = None
    nvlink_source: str = "unknown GPU model"
    fabric_gbps: float | None = None
    fabric_source: str = "no HCA rate known"
    min_fraction: float = DEFAULT_MIN_FRACTION
    large_message_bytes: int = DEFAULT_LARGE_MESSAGE_BYTES
    min_dev_shm_bytes: int = DEFAULT_MIN_DEV_SHM_BYTES


@dataclass(frozen=True)
class Port:
    """One HCA port as discovery (roles/rdma_network) saw it."""

    hca: str
    port: int
    state: str
    link_layer: str
    rate_gbps: float | None = None


@dataclass(frozen=True)
class Context:
    """What the inventory and discovery say the run should have used."""

    host: str | None = None
    scope: Scope = "node"
    transport: str | None = None
    expected_socket_ifname: str | None = None
    expected_hcas: tuple[str, ...] = ()
    expected_gid_index: int | None = None
    simulated: bool = False
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class Check:
    """One verdict, the same shape as sglfleet.preflight.gpu.Check plus the likely cause."""

    host: str
    check: str
    status: Status
    observed: str
    expected: str = ""
    fix: str = ""
    cause: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


@dataclass(frozen=True)
class Row:
    bytes: int
    size: str
    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    fraction_of_line_rate: float | None = None


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    hint: str
    evidence: list[str] = field(default_factory=list)


def thresholds_from_variables(
    variables: Mapping[str, Any],
    gpu_model: str | None = None,
    hca_rates_gbits: Sequence[float] = (),
) -> Thresholds:
    """Thresholds from role variables (nccl_tuning_preflight_*), else line rates of the hardware."""
    nvlink, nvlink_source = hardware.line_rate(gpu_model)
    declared = variables.get("nccl_tuning_preflight_nvlink_gbps")
    if declared not in (None, ""):
        nvlink, nvlink_source = float(declared), "nccl_tuning_preflight_nvlink_gbps"
    fabric: float | None = None
    fabric_source = "no HCA rate known"
    if hca_rates_gbits:
        fabric = sum(hca_rates_gbits) / 8.0
        fabric_source = (
            f"{len(hca_rates_gbits)} HCA ports, {sum(hca_rates_gbits):.0f} Gb/s = {fabric:.0f} GB/s"
        )
    declared = variables.get("nccl_tuning_preflight_fabric_gbps")
    if declared not in (None, ""):
        fabric, fabric_source = float(declared), "nccl_tuning_preflight_fabric_gbps"
    fraction = variables.get("nccl_tuning_preflight_min_fraction")
    large = variables.get("nccl_tuning_preflight_large_message_mb")
    shm = variables.get("nccl_tuning_preflight_min_dev_shm_mb")
    return Thresholds(
        nvlink_gbps=nvlink,
        nvlink_source=nvlink_source,
        fabric_gbps=fabric,
        fabric_source=fabric_source,
        min_fraction=float(fraction) if fraction not in (None, "") else DEFAULT_MIN_FRACTION,
        large_message_bytes=int(large) * MIB
        if large not in (None, "")
        else DEFAULT_LARGE_MESSAGE_BYTES,
        min_dev_shm_bytes=int(shm) * MIB if shm not in (None, "") else DEFAULT_MIN_DEV_SHM_BYTES,
    )


def size_label(nbytes: int) -> str:
    for unit, scale in (("G", GIB), ("M", MIB), ("K", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


def line_rate(thresholds: Thresholds, scope: Scope) -> tuple[float | None, str]:
    """The rate all-reduce bus bandwidth is held against: NVLink in a node, the fabric across."""
    if scope == "group" and thresholds.fabric_gbps is not None:
        if thresholds.nvlink_gbps is not None and thresholds.nvlink_gbps < thresholds.fabric_gbps:
            return thresholds.nvlink_gbps, thresholds.nvlink_source
        return thresholds.fabric_gbps, thresholds.fabric_source
    if scope == "group":
        return None, thresholds.fabric_source
    return thresholds.nvlink_gbps, thresholds.nvlink_source


def table(result: Mapping[str, Any], rate: float | None) -> list[Row]:
    """Bus bandwidth by message size, with the fraction of the line rate."""
    rows = []
    for raw in result.get("rows") or []:
        busbw = float(raw.get("busbw_gbps", 0.0))
        rows.append(
            Row(
                bytes=int(raw["bytes"]),
                size=size_label(int(raw["bytes"])),
                time_us=float(raw.get("time_us", 0.0)),
                algbw_gbps=float(raw.get("algbw_gbps", 0.0)),
                busbw_gbps=busbw,
                fraction_of_line_rate=round(busbw / rate, 3) if rate else None,
            )
        )
    return rows


def peak_busbw(result: Mapping[str, Any], large_message_bytes: int) -> float | None:
    """Best bus bandwidth among large messages (small ones measure latency, not bandwidth)."""
    values = [
        float(r["busbw_gbps"])
        for r in result.get("rows") or []
        if int(r.get("bytes", 0)) >= large_message_bytes
    ]
    return max(values) if values else None


def _env(result: Mapping[str, Any]) -> Mapping[str, str]:
    env = result.get("env")
    return env if isinstance(env, Mapping) else {}


def _log(result: Mapping[str, Any]) -> Mapping[str, Any]:
    log = result.get("nccl_log")
    return log if isinstance(log, Mapping) else {}


def _node(result: Mapping[str, Any]) -> Mapping[str, Any]:
    node = result.get("node")
    return node if isinstance(node, Mapping) else {}


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _transports(result: Mapping[str, Any]) -> dict[str, int]:
    raw = _log(result).get("transports") or {}
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def diagnose(result: Mapping[str, Any], context: Context) -> list[Diagnosis]:
    """Likely causes of a failed or slow all-reduce, most specific first."""
    env = _env(result)
    log = _log(result)
    node = _node(result)
    transports = _transports(result)
    error = str(result.get("error") or "")
    causes: list[Diagnosis] = []
    ifname = env.get("NCCL_SOCKET_IFNAME")
    bootstrap = [str(b) for b in log.get("bootstrap_interfaces") or []]

    if log.get("no_socket_interface") or "no socket interface" in error.lower():
        causes.append(
            Diagnosis(
                "wrong interface: NCCL_SOCKET_IFNAME="
                f"{ifname or '(unset)'} matches no usable interface on the host",
                "set sglfleet_fabric_interface to the fabric NIC (ip -br addr) or leave it unset"
                " so the role derives it from the route to rank 0",
                ["NCCL: no socket interface found"],
            )
        )
    elif context.expected_socket_ifname and bootstrap:
        expected = context.expected_socket_ifname.lstrip("=")
        if expected not in bootstrap:
            causes.append(
                Diagnosis(
                    f"wrong interface: NCCL bootstrapped over {', '.join(bootstrap)},"
                    f" the inventory expects {expected}",
                    "make NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME name the fabric interface"
                    " (sglfleet_fabric_interface) and re-run the fabric playbook",
                    [f"Bootstrap: Using {', '.join(bootstrap)}"],
                )
            )
    if "timed out" in error.lower() or "DistNetworkError" in error:
        causes.append(
            Diagnosis(
                "rendezvous failed: the ranks could not reach rank 0's dist-init address",
                "check sglfleet_fabric_address of rank 0, the route to it, and that the"
                " firewall lets the dist-init port through",
                [error[-300:]],
            )
        )

    p2p_off = _truthy(env.get("NCCL_P2P_DISABLE")) or str(
        env.get("NCCL_P2P_LEVEL", "")
    ).upper() in (
        "LOC",
        "0",
    )
    shm_off = _truthy(env.get("NCCL_SHM_DISABLE"))
    intra_via_host = [t for t in transports if t.startswith(("SHM", "NET"))]
    uses_p2p = any(t.startswith("P2P") for t in transports)
    if context.scope == "node" and (p2p_off or (intra_via_host and not uses_p2p)):
        via = ", ".join(intra_via_host) or "host memory"
        what = "NCCL_P2P_DISABLE=1 is set" if p2p_off else "NCCL chose no P2P path"
        if shm_off:
            what += " and NCCL_SHM_DISABLE=1"
        causes.append(
            Diagnosis(
                f"NVLink P2P is off: {what}, so GPU-to-GPU traffic goes through {via}",
                "remove NCCL_P2P_DISABLE/NCCL_P2P_LEVEL/NCCL_SHM_DISABLE from nccl_tuning_extra_env"
                " and the environment; check `nvidia-smi topo -m` shows NV# between GPUs",
                [f"transports: {dict(transports)}"],
            )
        )

    nvlink = node.get("nvlink")
    if isinstance(nvlink, Mapping) and nvlink.get("available"):
        inactive = [
            f"GPU{gpu.get('index')} link {link.get('link')}"
            for gpu in nvlink.get("gpus") or []
            for link in gpu.get("links") or []
            if not link.get("active")
        ]
        errors = int(nvlink.get("error_counter_total") or 0)
        if inactive or errors:
            causes.append(
                Diagnosis(
                    f"NVLink errors: {len(inactive)} inactive links, {errors} replay/recovery/CRC"
                    " errors",
                    "check `nvidia-smi nvlink -s` and `-e`, Fabric Manager (NVSwitch systems), and"
                    " reseat/RMA the baseboard if links stay down",
                    inactive[:8],
                )
            )

    if context.scope == "group":
        networks = [str(n) for n in log.get("networks") or []]
        down = [
            f"{p.hca}/{p.port} is {p.state}"
            for p in context.ports
            if (not context.expected_hcas or p.hca in context.expected_hcas)
            and p.state.upper() != "ACTIVE"
        ]
        if down:
            causes.append(
                Diagnosis(
                    "port down: " + ", ".join(down),
                    "check cables and the subnet manager (ibstat, `ibv_devinfo`), or drop the HCA"
                    " from sglfleet_rdma_hcas",
                    down,
                )
            )
        if (
            context.transport in ("infiniband", "roce")
            and "Socket" in networks
            and "IB" not in networks
        ):
            causes.append(
                Diagnosis(
                    "NCCL fell back to TCP sockets: no usable RDMA HCA"
                    f" (NCCL_IB_HCA={env.get('NCCL_IB_HCA', '(unset)')},"
                    f" NCCL_IB_DISABLE={env.get('NCCL_IB_DISABLE', '0')})",
                    "check NCCL_IB_HCA names HCAs that exist and are ACTIVE (ibstat), that"
                    " rdma-core/ibverbs is installed, and that NCCL_IB_DISABLE is not set",
                    [f"Using network {', '.join(networks)}"],
                )
            )
        if "IB" in networks and not log.get("gdr_in_use") and not context.simulated:
            causes.append(
                Diagnosis(
                    "GPUDirect RDMA off: NCCL's network channels show no GDRDMA ("
                    + gdr_evidence(result)
                    + ")",
                    GDR_FIX,
                    [f"transports: {dict(transports)}"],
                )
            )
        if context.transport == "roce" and context.expected_gid_index is not None:
            used = env.get("NCCL_IB_GID_INDEX")
            seen = [str(g) for g in log.get("gid_indexes") or []]
            actual = used if used not in (None, "") else (seen[0] if seen else None)
            if actual is not None and str(actual) != str(context.expected_gid_index):
                causes.append(
                    Diagnosis(
                        f"GID mismatch: NCCL used GID index {actual}, the RoCE v2 IPv4 GID of"
                        f" the fabric port is index {context.expected_gid_index}",
                        "set nccl_tuning_ib_gid_index (or let discovery set it) and keep the"
                        " fabric address on the RoCE interface",
                        [f"NCCL_IB_GID_INDEX={actual}"],
                    )
                )

    nvls_on = env.get("NCCL_NVLS_ENABLE") not in (None, "", "0")
    if nvls_on and (log.get("nvls") or any("NVLS" in str(w) for w in log.get("warnings") or [])):
        causes.append(
            Diagnosis(
                "NVLS (NVLink SHARP) is enabled and NCCL reported trouble with it",
                "set nccl_tuning_nvls_enable: 0 unless Fabric Manager and the driver support"
                " NVLink multicast on this system",
                [str(x) for x in (log.get("nvls") or [])][:3],
            )
        )
    return causes


def evaluate(result: Mapping[str, Any], thresholds: Thresholds, context: Context) -> list[Check]:
    """Every verdict on one bench result: ran, bandwidth, transport, GDR, memlock, /dev/shm."""
    host = context.host or str(_node(result).get("hostname") or "") or "?"
    checks: list[Check] = []
    causes = diagnose(result, context)
    cause_text = "; ".join(c.cause for c in causes)
    fix_text = causes[0].hint if causes else ""
    label = "within the node" if context.scope == "node" else "across the group"

    if not result.get("ok"):
        checks.append(
            Check(
                host,
                "nccl.run",
                "fail",
                f"all-reduce {label} failed: {str(result.get('error') or 'no result')[:400]}",
                "all-reduce completes with the right sum",
                # The bench (or the playbook) names the fix when the run could not start.
                fix_text
                or str(result.get("fix") or "")
                or "re-run with NCCL_DEBUG=INFO and read the first NCCL WARN line",
                cause_text
                or str(result.get("cause") or "")
                or "unknown: read the NCCL warnings in the result's nccl_log",
            )
        )
        return checks
    world = int(result.get("world_size") or 0)
    checks.append(
        Check(
            host,
            "nccl.run",
            "ok",
            f"all-reduce {label} ran on {world} GPUs with {result.get('tool')}"
            f" (NCCL {result.get('nccl_version') or '?'})",
            "all-reduce completes with the right sum",
        )
    )

    rate, source = line_rate(thresholds, context.scope)
    peak = peak_busbw(result, thresholds.large_message_bytes)
    large = size_label(thresholds.large_message_bytes)
    if world < 2:
        checks.append(Check(host, "nccl.busbw", "skip", "one GPU: nothing to all-reduce across"))
    elif peak is None:
        checks.append(
            Check(
                host,
                "nccl.busbw",
                "warn",
                f"no message of {large} or more was measured",
                f"bus bandwidth measured at {large} and above",
                "run the bench with --max-bytes of at least 1G",
            )
        )
    elif rate is None:
        checks.append(
            Check(
                host,
                "nccl.busbw",
                "warn",
                f"peak bus bandwidth {peak:.1f} GB/s",
                f"a line rate to compare against ({source})",
                "set nccl_tuning_preflight_nvlink_gbps / nccl_tuning_preflight_fabric_gbps",
            )
        )
    else:
        need = rate * thresholds.min_fraction
        observed = f"peak bus bandwidth {peak:.1f} GB/s = {peak / rate:.0%} of {rate:.0f} GB/s"
        expected = (
            f">= {thresholds.min_fraction:.0%} of {rate:.0f} GB/s = {need:.0f} GB/s ({source})"
        )
        if peak >= need:
            checks.append(Check(host, "nccl.busbw", "ok", observed, expected))
        else:
            checks.append(
                Check(
                    host,
                    "nccl.busbw",
                    "fail",
                    observed,
                    expected,
                    fix_text or "compare with nccl-tests all_reduce_perf on the node",
                    cause_text or "unknown: NCCL's log names no fallback transport",
                )
            )
    if causes and not any(c.status == "fail" for c in checks):
        checks.append(
            Check(
                host,
                "nccl.config",
                "warn",
                "bandwidth is fine but the setup looks off",
                "no fallback transport, interface or GID mismatch",
                fix_text,
                cause_text,
            )
        )
    checks += _gdr_checks(result, context, host)
    checks += _host_limit_checks(result, thresholds, context, host)
    return checks


GDR_FIX = (
    "set rdma_network_gpudirect: dmabuf (open NVIDIA modules, Linux >= 5.12) and re-run the"
    " fabric playbook, which says why a host cannot; then check NCCL_NET_GDR_LEVEL, PCIe ACS and"
    " the GPU-NIC topology (nvidia-smi topo -m)"
)


def gdr_evidence(result: Mapping[str, Any]) -> str:
    """What NCCL's log says about GPUDirect RDMA support: DMA-BUF, per-HCA verdicts, peermem."""
    log = _log(result)
    raw = log.get("gdr_hcas")
    hcas: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    parts = []
    if log.get("dmabuf_gpus"):
        parts.append("DMA-BUF is available on the GPUs")
    elif "dmabuf_gpus" in log:
        parts.append("no 'DMA-BUF is available' line (proprietary modules or kernel < 5.12?)")
    if hcas.get("disabled"):
        parts.append("NCCL disabled GDR for HCA " + ", ".join(map(str, hcas["disabled"])))
    if hcas.get("enabled"):
        parts.append("NCCL enabled GDR for HCA " + ", ".join(map(str, hcas["enabled"])))
    parts.append(
        "nvidia-peermem loaded" if _node(result).get("peermem_loaded") else "no nvidia-peermem"
    )
    return "; ".join(parts)


def gdr_mechanism(result: Mapping[str, Any]) -> str:
    """How NCCL reached GPU memory: DMA-BUF, nvidia-peermem, or unknown from the log."""
    if _log(result).get("dmabuf_gpus"):
        return "DMA-BUF"
    if _node(result).get("peermem_loaded"):
        return "nvidia-peermem"
    return "DMA-BUF or nvidia-peermem"


def _gdr_checks(result: Mapping[str, Any], context: Context, host: str) -> list[Check]:
    """GPUDirect RDMA judged by what NCCL did (GDRDMA channels), never by a module's presence."""
    if context.transport not in ("infiniband", "roce"):
        return []
    if context.simulated:
        return [
            Check(
                host,
                "nccl.gdr",
                "skip",
                "simulated GPU host: GPUDirect RDMA cannot be exercised",
                "GDRDMA in NCCL's transports",
            )
        ]
    log = _log(result)
    if context.scope != "group" or "IB" not in (log.get("networks") or []):
        return []
    expected = "every NET channel of NCCL's log marked /GDRDMA"
    total = int(log.get("net_channels") or 0)
    direct = int(log.get("net_channels_gdr") or 0)
    if not log.get("gdr_in_use"):
        return [
            Check(
                host,
                "nccl.gdr",
                "fail",
                "NCCL's network channels show no GDRDMA: transfers bounce through host memory"
                f" ({gdr_evidence(result)})",
                expected,
                GDR_FIX,
                "GPUDirect RDMA off (all-reduce across nodes several times slower)",
            )
        ]
    if total and direct < total:
        return [
            Check(
                host,
                "nccl.gdr",
                "warn",
                f"{direct} of {total} NET channels use GDRDMA ({gdr_evidence(result)})",
                expected,
                "check that each GPU has a NIC on its PCIe switch (nvidia-smi topo -m) and"
                " NCCL_NET_GDR_LEVEL",
                "some GPUs reach the fabric through host memory",
            )
        ]
    return [
        Check(
            host,
            "nccl.gdr",
            "ok",
            f"NCCL moves data GPU<->NIC directly (GDRDMA through {gdr_mechanism(result)})",
            expected,
        )
    ]


def _host_limit_checks(
    result: Mapping[str, Any], thresholds: Thresholds, context: Context, host: str
) -> list[Check]:
    node = _node(result)
    checks: list[Check] = []
    shm = node.get("dev_shm_bytes")
    expected = f">= {thresholds.min_dev_shm_bytes / MIB:.0f} MiB"
    if isinstance(shm, int) and shm < thresholds.min_dev_shm_bytes:
        checks.append(
            Check(
                host,
                "nccl.dev_shm",
                "fail",
                f"/dev/shm is {shm / MIB:.0f} MiB",
                expected,
                "enlarge /dev/shm (tmpfs size=) or, in containers, pass --shm-size",
                "NCCL's SHM transport and SGLang's shared memory run out of space",
            )
        )
    elif isinstance(shm, int):
        checks.append(
            Check(host, "nccl.dev_shm", "ok", f"/dev/shm is {shm / GIB:.1f} GiB", expected)
        )
    memlock = str(node.get("memlock") or "unknown")
    if context.transport in ("infiniband", "roce") and memlock != "unlimited":
        checks.append(
            Check(
                host,
                "nccl.memlock",
                "warn",
                f"locked-memory limit is {memlock} bytes in the preflight's shell",
                "unlimited",
                "rdma_network sets memlock unlimited for sessions; the SGLang unit needs"
                " LimitMEMLOCK=infinity",
                "RDMA memory registration fails or falls back when memlock is limited",
            )
        )
    return checks


def compare_to_reference(
    result: Mapping[str, Any], reference: Mapping[str, Any], large_message_bytes: int
) -> dict[str, Any]:
    """Peak bus bandwidth of the bench against a reference measured in the same run."""
    ours = peak_busbw(result, large_message_bytes)
    theirs = peak_busbw(reference, large_message_bytes)
    ratio = ours / theirs if ours is not None and theirs else None
    return {
        "bench_busbw_gbps": ours,
        "reference_busbw_gbps": theirs,
        "ratio": round(ratio, 4) if ratio is not None else None,
        "within_10_percent": ratio is not None and abs(1.0 - ratio) <= 0.10,
    }


def summary(
    result: Mapping[str, Any], checks: Sequence[Check], thresholds: Thresholds, context: Context
) -> dict[str, Any]:
    """The `--json` document of one bench result."""
    rate, source = line_rate(thresholds, context.scope)
    peak = peak_busbw(result, thresholds.large_message_bytes)
    failed = [c for c in checks if c.status == "fail"]
    return {
        "host": context.host or _node(result).get("hostname"),
        "scope": context.scope,
        "name": result.get("name"),
        "ok": not failed,
        "tool": result.get("tool"),
        "world_size": result.get("world_size"),
        "nccl_version": result.get("nccl_version"),
        "peak_busbw_gbps": peak,
        "line_rate_gbps": rate,
        "line_rate_source": source,
        "fraction_of_line_rate": round(peak / rate, 4) if peak is not None and rate else None,
        "min_fraction": thresholds.min_fraction,
        "causes": [c.cause for c in failed if c.cause],
        "checks": [asdict(c) for c in checks],
        "table": [asdict(r) for r in table(result, rate)],
        "transports": _transports(result),
    }


def context_from_document(document: Mapping[str, Any]) -> Context:
    """The expectations playbooks/nccl_preflight.yml writes beside each result (`sglfleet` key)."""
    raw = document.get("sglfleet")
    meta: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    ports = tuple(
        Port(
            hca=str(p.get("hca")),
            port=int(p.get("port") or 1),
            state=str(p.get("state") or "UNKNOWN"),
            link_layer=str(p.get("link_layer") or "unknown"),
            rate_gbps=float(p["rate_gbps"]) if p.get("rate_gbps") is not None else None,
        )
        for p in meta.get("ports") or []
        if isinstance(p, Mapping)
    )
    gid = meta.get("expected_gid_index")
    transport = str(meta.get("transport") or "") or None
    return Context(
        host=str(meta.get("host") or "") or None,
        scope="group" if meta.get("scope") == "group" else "node",
        transport=None if transport == "none" else transport,
        expected_socket_ifname=str(meta.get("expected_socket_ifname") or "") or None,
        expected_hcas=tuple(str(h) for h in meta.get("expected_hcas") or ()),
        expected_gid_index=int(str(gid).strip()) if str(gid).strip().isdigit() else None,
        simulated=bool(meta.get("simulated")),
        ports=ports,
    )


def judge(
    document: Mapping[str, Any], variables: Mapping[str, Any]
) -> tuple[list[Check], dict[str, Any]]:
    """Checks and `--json` summary of one nccl-*.json file, thresholds from role variables."""
    context = context_from_document(document)
    meta = document.get("sglfleet")
    gpu_model = str(meta.get("gpu_model") or "") if isinstance(meta, Mapping) else ""
    node = _node(document)
    names = node.get("gpu_names") or []
    gpu_model = gpu_model or (str(names[0]) if names else "")
    wanted = set(context.expected_hcas)
    rates = [
        p.rate_gbps
        for p in context.ports
        if p.rate_gbps is not None
        and p.state.upper() == "ACTIVE"
        and (not wanted or p.hca in wanted)
    ]
    thresholds = thresholds_from_variables(variables, gpu_model or None, rates)
    if document.get("skipped"):
        host = context.host or "?"
        checks = [Check(host, "nccl.run", "skip", str(document["skipped"]), "a measured run")]
    else:
        checks = evaluate(document, thresholds, context)
    return checks, summary(document, checks, thresholds, context)

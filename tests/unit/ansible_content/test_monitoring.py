"""Monitoring: scrape targets from the inventory, Prometheus config and alert rules checked by
promtool (rules unit-tested with `promtool test rules`), the Grafana dashboard's metric names,
and the Open WebUI role's rendered unit and environment file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import FilterModule as AnsibleCoreFilters

from sglfleet.host_plan import inventory_plans
from sglfleet_sglang.metrics import exposed_names

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring"
WEBUI_ROLE = ROOT / "roles" / "open_webui"
EXAMPLES = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())
DASHBOARD = ROLE / "files/var/lib/grafana/dashboards/sglfleet/sglfleet-serving.json"
RULES_TEST = Path(__file__).with_name("test_monitoring_rules.yml")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: `apt-get install prometheus` (Debian's package carries promtool)",
)

# sglang-router 0.3.2's metrics, as its /metrics answered with one worker on this machine.
ROUTER_METRICS = {
    "smg_worker_health",
    "smg_worker_pool_size",
    "smg_worker_cb_state",
    "smg_worker_health_checks_total",
    "smg_router_requests_total",
    "smg_http_requests_total",
}
# node exporter 1.5 (Debian 12), systemd collector with --collector.systemd.enable-restarts-metrics.
NODE_EXPORTER_METRICS = {"node_systemd_unit_state", "node_systemd_service_restart_total"}
PROMETHEUS_METRICS = {"up"}

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "or", "and", "unless", "bool", "offset", "rate", "increase", "irate",
    "round", "histogram_quantile", "label_values", "inf", "nan",
}  # fmt: skip


class _PlannedMonitoring:
    """What the monitoring play reads: the Prometheus host's part of the run's plan."""

    @staticmethod
    def _prometheus_plan(directory: str) -> dict[str, Any]:
        plans = inventory_plans(directory)
        assert not plans.problems, plans.problems
        holders = [p for p in plans.hosts.values() if "monitoring_targets" in p]
        assert holders, f"no host of {directory} carries the scrape targets"
        return holders[0]

    def sglfleet_monitoring_targets(self, directory: str) -> dict[str, Any]:
        targets: dict[str, Any] = self._prometheus_plan(directory)["monitoring_targets"]
        return targets

    def sglfleet_monitoring_router_endpoint(self, directory: str) -> str | None:
        endpoint: str | None = self._prometheus_plan(directory)["monitoring_router_endpoint"]
        return endpoint


FILTER = _PlannedMonitoring()


def _dcgm_names() -> set[str]:
    defaults = yaml.safe_load((ROOT / "roles/dcgm/defaults/main.yml").read_text())
    return {row[0] for row in defaults["dcgm_exporter_counters"]}


KNOWN_METRICS = (
    exposed_names() | _dcgm_names() | ROUTER_METRICS | NODE_EXPORTER_METRICS | PROMETHEUS_METRICS
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings, ranges dropped)."""
    text = re.sub(r"\{[^}]*\}", "", expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r'"[^"]*"', "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if word.lower() in PROMQL_WORDS or rest.startswith("("):
            continue
        if text[max(0, match.start() - 1)] == "$":
            continue
        names.add(word)
    return names


def _env(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(AnsibleCoreFilters().filters())
    return env


def _role_vars(role: Path, **overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = yaml.safe_load((role / "defaults/main.yml").read_text())
    variables["ansible_managed"] = "Ansible managed"
    variables["inventory_hostname"] = "test-host"
    variables.update(overrides)
    constants = yaml.safe_load((role / "vars/main.yml").read_text())
    for key, value in constants.items():  # constants may refer to inputs and to each other
        variables[key] = value
    for key, value in constants.items():
        if isinstance(value, str) and "{{" in value:
            variables[key] = jinja2.Environment().from_string(value).render(**variables)
    return variables


def render_monitoring(template: str, **overrides: Any) -> str:
    return _env(ROLE / "templates").get_template(template).render(**_role_vars(ROLE, **overrides))


def render_rules(directory: Path) -> Path:
    rules = directory / "sglfleet.rules.yml"
    rules.write_text(render_monitoring("etc/prometheus/rules/sglfleet.rules.yml.j2"))
    return rules


# --- scrape targets from the inventory ------------------------------------------------------


def test_targets_of_a_two_node_group_label_every_member() -> None:
    targets = FILTER.sglfleet_monitoring_targets(
        str(ROOT / "inventories/examples/deepseek-r1-2x8-h100")
    )
    assert [t["targets"] for t in targets["sglang"]] == [["192.0.2.11:30000"], ["192.0.2.12:30000"]]
    assert [t["labels"]["node_rank"] for t in targets["sglang"]] == ["0", "1"]
    assert {t["labels"]["group"] for t in targets["sglang"]} == {"r1"}
    assert {t["labels"]["model"] for t in targets["sglang"]} == {"deepseek-r1"}
    assert targets["router"] == [{"targets": ["192.0.2.11:29000"], "labels": {"host": "h100-a"}}]
    assert [t["targets"] for t in targets["node"]] == [["192.0.2.11:9100"], ["192.0.2.12:9100"]]
    assert [t["targets"] for t in targets["dcgm"]] == [["192.0.2.11:9400"], ["192.0.2.12:9400"]]


def test_targets_of_replicas_name_each_group() -> None:
    targets = FILTER.sglfleet_monitoring_targets(str(ROOT / "inventories/examples/qwen3-8b-4x1"))
    assert [t["labels"]["group"] for t in targets["sglang"]] == [f"qwen-{i}" for i in range(4)]
    assert [t["labels"]["host"] for t in targets["sglang"]] == [f"qwen-{i}" for i in range(1, 5)]


def _copy_inventory(tmp_path: Path, source: str) -> Path:
    target = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories/examples" / source, target)
    return target


def test_simulated_gpus_and_disabled_exporters_get_no_dcgm_target(tmp_path: Path) -> None:
    inventory = _copy_inventory(tmp_path, "qwen3-8b-4x1")
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    gpu_nodes = hosts["all"]["children"]["sglfleet_gpu_nodes"]["hosts"]
    gpu_nodes["qwen-1"]["sglfleet_simulated_gpus"] = True
    gpu_nodes["qwen-2"]["dcgm_exporter_enabled"] = False
    gpu_nodes["qwen-3"]["dcgm_exporter_port"] = 9500
    gpu_nodes["qwen-4"]["monitoring_node_exporter_port"] = 9101
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    targets = FILTER.sglfleet_monitoring_targets(str(inventory))
    assert [t["targets"] for t in targets["dcgm"]] == [["192.0.2.33:9500"], ["192.0.2.34:9400"]]
    assert [t["targets"][0] for t in targets["node"]][2:] == ["192.0.2.33:9100", "192.0.2.34:9101"]


def test_router_endpoint_is_the_openai_base_url() -> None:
    endpoint = FILTER.sglfleet_monitoring_router_endpoint(
        str(ROOT / "inventories/examples/qwen3-8b-4x1")
    )
    assert endpoint == "http://192.0.2.31:8000/v1"


# --- Prometheus config and rules -------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_scrape_config_renders_and_promtool_accepts_it(tmp_path: Path, example: Path) -> None:
    targets = FILTER.sglfleet_monitoring_targets(str(example))
    rendered = render_monitoring(
        "etc/prometheus/prometheus.yml.j2",
        monitoring_prometheus_targets=targets,
        monitoring_prometheus_alertmanagers=["127.0.0.1:9093"],
    )
    config = yaml.safe_load(rendered)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "sglang", "sglang-router", "node", "dcgm"}
    assert jobs["sglang"]["static_configs"] == targets["sglang"]
    assert config["global"]["external_labels"] == {"cluster": "sglfleet"}
    if PROMTOOL is None:
        pytest.skip("promtool not found: `apt-get install prometheus` (it carries promtool)")
    (tmp_path / "rules").mkdir()
    render_rules(tmp_path / "rules")
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_jobs_are_left_out() -> None:
    rendered = render_monitoring(
        "etc/prometheus/prometheus.yml.j2",
        monitoring_prometheus_targets={"node": [{"targets": ["n1:9100"], "labels": {}}]},
    )
    config = yaml.safe_load(rendered)
    assert [job["job_name"] for job in config["scrape_configs"]] == ["prometheus", "node"]
    assert "alerting" not in config


@needs_promtool
def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    rules = render_rules(tmp_path)
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_the_alerts(tmp_path: Path) -> None:
    render_rules(tmp_path)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", RULES_TEST.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alert_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The rules test can fail: with 2 restarts a day allowed, the 3-restart unit alerts too."""
    (tmp_path / "sglfleet.rules.yml").write_text(
        render_monitoring(
            "etc/prometheus/rules/sglfleet.rules.yml.j2", monitoring_alert_unit_restarts_per_day=2
        )
    )
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", RULES_TEST.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "sglang-server@b.service" in result.stdout + result.stderr


def test_rules_read_only_known_metrics() -> None:
    rules = yaml.safe_load(render_monitoring("etc/prometheus/rules/sglfleet.rules.yml.j2"))
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) == {
        "GPUMemoryHigh",
        "SGLangE2ELatencyP99High",
        "SGLangUnitRestarting",
        "RouterNoHealthyWorkers",
        "TargetDown",
    }
    for name, rule in alerts.items():
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS
        assert not unknown, f"{name} reads unknown metrics {unknown}"


def test_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.99, sum by (group, le) (rate(sglang:x_bucket{a="b"}[5m]))) > 0.5'
    assert metric_names(expr) == {"sglang:x_bucket"}
    assert metric_names('a / (b + c{d=~"e.+"}) or on (i) max by (i) (up == 1) * 0') == {
        "a",
        "b",
        "c",
        "up",
    }


def test_node_exporter_dropin_enables_the_systemd_collector_with_restarts() -> None:
    dropin = render_monitoring(
        "etc/systemd/system/prometheus-node-exporter.service.d/sglfleet.conf.j2"
    )
    execs = [line for line in dropin.splitlines() if line.startswith("ExecStart=")]
    assert execs[0] == "ExecStart="
    assert "--collector.systemd " in execs[1]
    assert "--collector.systemd.enable-restarts-metrics" in execs[1]
    assert "--collector.systemd.unit-include=(sglang-.+|" in execs[1]
    assert "\\" not in execs[1]  # systemd would unescape it
    assert "ProtectSystem=strict" in dropin and "CapabilityBoundingSet=" in dropin


def test_prometheus_dropin_sets_retention() -> None:
    dropin = render_monitoring(
        "etc/systemd/system/prometheus.service.d/sglfleet.conf.j2",
        monitoring_prometheus_retention="90d",
    )
    assert "--storage.tsdb.retention.time=90d" in dropin
    assert "ReadWritePaths=/var/lib/prometheus" in dropin


# --- Grafana --------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_dashboard_panels_query_known_metrics() -> None:
    dashboard = _dashboard()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    seen: set[str] = set()
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"panel {panel['title']}: no metric in {target['expr']}"
            unknown = names - KNOWN_METRICS
            assert not unknown, f"panel {panel['title']} reads unknown metrics {unknown}"
            seen |= names
    # The panels the brief asks for, by the metric each one needs.
    for required in (
        "sglang:generation_tokens_total",
        "sglang:time_to_first_token_seconds_bucket",
        "sglang:inter_token_latency_seconds_bucket",
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:token_usage",
        "sglang:cache_hit_rate",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_GPU_UTIL",
        "node_systemd_service_restart_total",
    ):
        assert required in seen, f"no panel shows {required}"


def test_dashboard_unknown_metric_is_caught() -> None:
    assert metric_names("rate(sglang:tokens_generated_total[5m])") - KNOWN_METRICS


def test_dashboard_grid_and_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "sglfleet-serving"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "group", "host"}


def test_grafana_provisioning_points_at_the_dashboard_folder() -> None:
    provider = yaml.safe_load(
        render_monitoring("etc/grafana/provisioning/dashboards/sglfleet.yml.j2")
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/sglfleet"
    datasource = yaml.safe_load(
        render_monitoring("etc/grafana/provisioning/datasources/sglfleet.yml.j2")
    )
    assert datasource["datasources"][0]["type"] == "prometheus"
    assert datasource["datasources"][0]["url"] == "http://127.0.0.1:9090"


# --- Open WebUI -----------------------------------------------------------------------------


def render_webui(template: str, **overrides: Any) -> str:
    inputs = {"open_webui_openai_api_base_url": "http://10.0.0.1:8000/v1", **overrides}
    variables = _role_vars(WEBUI_ROLE, **inputs)
    return _env(WEBUI_ROLE / "templates").get_template(template).render(**variables)


def _env_file(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}


def test_webui_env_file_points_at_the_router_with_the_key() -> None:
    env = _env_file(
        render_webui(
            "etc/open-webui/open-webui.env.j2",
            open_webui_openai_api_key='s3cret "quoted"',
            open_webui_extra_env={"WEBUI_AUTH": True},
        )
    )
    assert env["OPENAI_API_BASE_URL"] == "http://10.0.0.1:8000/v1"
    assert env["OPENAI_API_KEY"] == 's3cret "quoted"'
    assert env["ENABLE_OLLAMA_API"] == "false"
    assert env["DATA_DIR"] == "/var/lib/open-webui"
    assert env["OFFLINE_MODE"] == "true" and env["HF_HUB_OFFLINE"] == "1"
    assert env["WEBUI_AUTH"] == "True"
    assert "WEBUI_SECRET_KEY" not in env


def test_webui_secret_key_only_when_set() -> None:
    env = _env_file(
        render_webui(
            "etc/open-webui/open-webui.env.j2", open_webui_secret_key="k", open_webui_offline=False
        )
    )
    assert env["WEBUI_SECRET_KEY"] == "k"
    assert "OFFLINE_MODE" not in env


def test_webui_unit_is_hardened_and_keeps_the_key_off_the_command_line() -> None:
    unit = render_webui("etc/systemd/system/open-webui.service.j2", open_webui_port=8081)
    lines = set(unit.splitlines())
    assert "EnvironmentFile=/etc/open-webui/open-webui.env" in lines
    assert "ExecStart=/opt/open-webui/venv/bin/open-webui serve --host 0.0.0.0 --port 8081" in lines
    assert "User=open-webui" in lines
    assert {"NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="} <= lines
    assert "ReadWritePaths=/var/lib/open-webui" in lines
    assert "API_KEY" not in unit


def test_webui_env_file_task_is_no_log_and_0640() -> None:
    tasks = yaml.safe_load((WEBUI_ROLE / "tasks/configure.yml").read_text())
    env_task = next(t for t in tasks if "open-webui.env" in t["sglfleet_template"]["src"])
    assert env_task["no_log"] is True
    assert env_task["sglfleet_template"]["mode"] == "0640"


def test_systemd_collector_reports_every_unit_the_node_roles_run() -> None:
    """Both DCGM exporter units (packaged, URL), DCGM, fabric manager, persistenced, serving."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    include = re.compile(defaults["monitoring_node_exporter_systemd_unit_include"])
    units = [
        "sglang-main.service",
        "nvidia-dcgm.service",
        "nvidia-dcgm-exporter.service",
        "dcgm-exporter.service",
        "nvidia-fabricmanager.service",
        "nvidia-persistenced.service",
        "open-webui.service",
    ]
    assert [u for u in units if not include.fullmatch(u)] == []
    assert not include.fullmatch("ssh.service")

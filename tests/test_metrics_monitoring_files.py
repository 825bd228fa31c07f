"""The monitoring files fit together (compose mounts, Prometheus config, Grafana provisioning, dashboard),
and, where promtool is installed, Prometheus itself checks them and runs the alert rules' unit tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.services import REPO_ROOT

MONITORING = REPO_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "slimline.json"
PROMTOOL = shutil.which("promtool") or ""
needs_promtool = pytest.mark.skipif(not PROMTOOL,
                                    reason="promtool not installed (Debian: apt-get install prometheus)")


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _mounts(service: str) -> dict[str, Path]:
    """Container path → repository path of a service's bind mounts."""
    mounts = {}
    for volume in _compose()["services"][service]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = REPO_ROOT / source
    return mounts


def test_compose_mounts_what_prometheus_and_grafana_read() -> None:
    prometheus = _mounts("prometheus")
    assert all(path.exists() for path in prometheus.values()), prometheus
    config = yaml.safe_load(prometheus["/etc/prometheus/prometheus.yml"].read_text())
    assert all(rule_file in prometheus for rule_file in config["rule_files"])
    workers = [name for name in _compose()["services"] if name.startswith("worker-")]
    scraped = config["scrape_configs"][0]["dns_sd_configs"][0]
    assert sorted(scraped["names"]) == sorted(workers)
    assert all(_compose()["services"][name]["environment"]["SLIMLINE_METRICS_PORT"] == str(scraped["port"])
               for name in workers)

    grafana = _mounts("grafana")
    provider = yaml.safe_load((grafana["/etc/grafana/provisioning"] / "dashboards" / "slimline.yml").read_text())
    dashboards = grafana[provider["providers"][0]["options"]["path"]]
    assert (dashboards / DASHBOARD.name).is_file()
    sources = yaml.safe_load((grafana["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in sources["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert used == uids == {"prometheus"}


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        grid = panel["gridPos"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert grid["x"] + grid["w"] <= 24 and not cells & taken, panel["title"]
        taken |= cells


@needs_promtool
def test_promtool_accepts_config_rules_and_dashboard_queries(tmp_path: Path) -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["rule_files"] = [str(MONITORING / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    # Dashboard queries as recording rules, so promtool parses them (Grafana's variables filled in).
    dashboard = json.loads(DASHBOARD.read_text())
    rules = [{"record": f"dashboard:panel{panel['id']}:{target['refId']}",
              "expr": target["expr"].replace("$__rate_interval", "5m").replace("$queue", ".*")}
             for panel in dashboard["panels"] for target in panel.get("targets", [])]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    for command in (["check", "config", str(tmp_path / "prometheus.yml")],
                    ["check", "rules", str(tmp_path / "dashboard.yml")]):
        result = subprocess.run([PROMTOOL, *command], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_fire_when_they_should() -> None:
    result = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=MONITORING, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr

"""The Prometheus files of deploy/prometheus, checked by Debian's promtool: the configuration's syntax,
the alert rules, and the rules' unit tests (alerts.test.yml: a device going offline fires its alert, and
the others fire on what they are for); the Grafana dashboard reads the provisioned data source. A real
Prometheus runs them in tests/e2e/test_monitoring.py."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.support.paths import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"

pytestmark = pytest.mark.skipif(
    not shutil.which("promtool"), reason="promtool is not installed (make test installs Debian's prometheus)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS)


def test_the_scrape_config_and_the_alert_rules_pass_promtool() -> None:
    config = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 10 rules found" in rules.stdout


def test_the_rules_unit_tests_pass_a_device_going_offline_fires_its_alert() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_dashboard_reads_the_provisioned_data_source_from_the_provisioned_folder() -> None:
    grafana = ROOT / "deploy" / "grafana"
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    dashboard = json.loads((grafana / "dashboards" / "fleet.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {p["datasource"]["uid"] for p in panels} == {source["uid"]}
    assert {t["datasource"]["uid"] for p in panels for t in p["targets"]} == {source["uid"]}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"]), "panel ids are unique"
    provider = yaml.safe_load((grafana / "provisioning/dashboards/edgeloop.yml").read_text())["providers"][0]
    assert (provider["type"], provider["options"]["path"]) == ("file", "/etc/grafana/dashboards")

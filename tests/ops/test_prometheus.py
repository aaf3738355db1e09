"""The monitoring files through the real tools: promtool checks the scrape config and runs
the alert rules' unit tests; a real Prometheus scrapes a running studio and proves that
every metric and label the rules and the dashboard use exists; the dashboard is wired to the
provisioned datasource."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.services import Services
from tests.conftest import LiveServer, free_port, require_binary, wait_for_job
from tests.ops.helpers import install_ops_jobs
from tests.ops.promql import (
    ALERTS,
    DASHBOARD,
    ROOT,
    dashboard_panels,
    dashboard_queries,
    parse,
    rule_queries,
)

PROM_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


def test_promtool_checks_scrape_config_and_rules() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "config", str(PROM_DIR / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alert_rules_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=PROM_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_unit_tests_that_fire_it() -> None:
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())
    fired = {case["alertname"] for test in tests["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in tests["tests"]
             for case in test.get("alert_rule_test", []) if not case.get("exp_alerts")}
    alerts = {q.where.removeprefix("rule ") for q in rule_queries()}
    assert alerts == fired, "every alert needs a case where it fires"
    assert alerts == quiet, "every alert needs a case where it stays quiet"


def test_dashboard_uses_the_provisioned_datasource() -> None:
    datasource = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = datasource["datasources"]
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "studio.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("requests", "latency", "jobs by status", "stage duration", "fallbacks",
                  "queue depth", "worker"):
        assert topic in titles, topic
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            assert target["expr"].strip()


def test_reference_finder_sees_selectors_groupings_and_legends() -> None:
    query = parse("x", 'sum by (le, stage) (rate(studio_a_bucket{kind="m", status=~"5.."}[5m]))'
                       " / on(instance) up", "{{stage}} {{ $labels.worker }}")
    assert query.metrics == {"studio_a_bucket", "up"}
    assert query.selector_labels == {("studio_a_bucket", "kind"), ("studio_a_bucket", "status")}
    assert query.shown_labels == {"le", "stage", "instance", "worker"}


# ----------------------------------------------------------------- real Prometheus


@pytest.fixture
def busy_studio(services: Services) -> Iterator[LiveServer]:
    """A live studio whose worker ran a job through every metric: a stage per engine, a
    fallback, a failure, and a 404 on the API."""
    gen = install_ops_jobs(services)
    next(gen)
    with LiveServer(services) as server:
        services.queue.start_consumer(1, install_signals=False)
        try:
            for kind in ("ops.message", "ops.broken"):
                wait_for_job(services, services.queue.submit(kind, {}).id, timeout=60)
            assert httpx.get(server.url + "/api/jobs/nope").status_code == 404
            yield server
        finally:
            services.queue.stop_consumer()
    gen.close()


@pytest.fixture
def prometheus(busy_studio: LiveServer, tmp_path: Path) -> Iterator[str]:
    binary = require_binary("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "studio", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{busy_studio.port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:  # 503 "Service Unavailable" (plain text) while its database opens
                answer = httpx.get(f"{url}/api/v1/query",
                                   params={"query": "studio_worker_threads"})
                if answer.status_code == 200 and answer.json()["data"]["result"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def series_labels(url: str, metric: str) -> set[str]:
    data = httpx.get(f"{url}/api/v1/series", params={"match[]": metric}).json()
    assert data["status"] == "success", data
    return {label for series in data["data"] for label in series}


@pytest.mark.slow
def test_prometheus_scrapes_every_metric_and_label_rules_and_dashboard_use(prometheus) -> None:
    queries = rule_queries() + dashboard_queries()
    labels = {m: series_labels(prometheus, m) for q in queries for m in q.metrics}
    missing_metrics = sorted(m for m, found in labels.items() if not found)
    assert not missing_metrics, f"not scraped: {missing_metrics}"
    problems = []
    for query in queries:
        for metric, label in query.selector_labels:
            if label not in labels[metric]:
                problems.append(f"{query.where}: {metric} has no label {label}")
        for label in query.shown_labels:
            if not any(label in labels[m] for m in query.metrics):
                problems.append(f"{query.where}: no metric of {sorted(query.metrics)} "
                                f"has label {label}")
    assert not problems, "\n".join(problems)

    # and Prometheus loaded and evaluated every rule without an error
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("2") and
                         not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert len(rules) == len(rule_queries())
    assert all(r["health"] == "ok" for r in rules), [
        (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]

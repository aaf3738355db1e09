"""Which metric names and labels the alert rules and the dashboard refer to.

Not a PromQL parser: our expressions only name ``studio_*`` metrics (and ``up``), so a
selector regex plus the grouping clauses, legend templates and ``$labels.x`` in annotations
find every reference. What it finds is then proven against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "studio.json"

SELECTOR = re.compile(r"\b(studio_[a-z0-9_]+|up)\b\s*(\{[^}]*\})?")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")


@dataclass
class Query:
    """One expression: where it is, its metrics, labels on a selector, labels it groups by or
    shows (which one of its metrics must carry)."""

    where: str
    expr: str
    metrics: set[str] = field(default_factory=set)
    selector_labels: set[tuple[str, str]] = field(default_factory=set)
    shown_labels: set[str] = field(default_factory=set)


def parse(where: str, expr: str, shown: str = "") -> Query:
    query = Query(where, expr)
    for name, matchers in SELECTOR.findall(expr):
        query.metrics.add(name)
        for label in MATCHER.findall(matchers or ""):
            query.selector_labels.add((name, label))
    for group in GROUPING.findall(expr):
        query.shown_labels.update(p.strip() for p in group.split(",") if p.strip())
    query.shown_labels.update(LEGEND.findall(shown))
    query.shown_labels.update(TEMPLATE_LABEL.findall(shown))
    return query


def rule_queries(path: Path = ALERTS) -> list[Query]:
    doc = yaml.safe_load(path.read_text())
    out = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            shown = " ".join(str(v) for v in (rule.get("annotations") or {}).values())
            out.append(parse(f"rule {name}", rule["expr"], shown))
    return out


def dashboard_panels(path: Path = DASHBOARD) -> list[dict]:
    doc = json.loads(path.read_text())
    panels = []
    for panel in doc["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries(path: Path = DASHBOARD) -> list[Query]:
    out = []
    for panel in dashboard_panels(path):
        for target in panel.get("targets", []):
            out.append(parse(f"panel {panel['title']!r} {target['refId']}", target["expr"],
                             target.get("legendFormat", "")))
    return out

"""The rules file: defaults, overrides, and clear rejections naming the bad line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.alerts.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules
from pipeline.traffic.scenarios import SCENARIO_RULES


def test_packaged_and_scenario_rules_are_valid() -> None:
    rules = load_rules(DEFAULT_RULES)
    assert rules.brand_spike("post", "Acme").window == 300
    parse_rules(SCENARIO_RULES)


def test_overrides_apply_in_file_order_by_source_brand_and_tier() -> None:
    rules = parse_rules(
        """
angry_customer: {min_anger: 0.6, cooldown: 2h}
brand_spike: {min_volume: 50}
overrides:
  - match: {tier: [premium, enterprise]}
    angry_customer: {min_anger: 0.4}
  - match: {tier: enterprise, brand: Acme}
    angry_customer: {min_anger: 0.3}
  - match: {source: ticket}
    brand_spike: {min_volume: 5}
  - match: {brand: Acme, source: post}
    brand_spike: {window: 1m}
"""
    )
    assert rules.angry_customer("Other", "standard").min_anger == 0.6
    assert rules.angry_customer("Other", "premium").min_anger == 0.4
    assert rules.angry_customer("Acme", "enterprise").min_anger == 0.3
    assert rules.angry_customer("Acme", "enterprise").cooldown == 7200  # untouched default
    assert rules.brand_spike("ticket", "Acme").min_volume == 5
    assert rules.brand_spike("ticket", "Acme").window == 300
    assert rules.brand_spike("post", "Acme").window == 60
    assert rules.brand_spike("post", "Acme").min_volume == 50


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("angry_customer:\n  min_anger: 1.5\n", 2, "angry_customer.min_anger: Input should"),
        ("brand_spike:\n  window: 5 minutes\n", 2, "expected a duration such as 30s"),
        ("brand_spike:\n  window: 0\n", 2, "brand_spike.window: Input should be greater than 0"),
        ("version: 1\nangry_customer:\n  cooldwn: 1h\n", 3, "cooldwn: unknown setting"),
        ("angry_customer:\n  emotions: [anger, rage]\n", 2, "unknown emotion(s) ['rage']"),
        ("overrides:\n  - match: {tier: gold}\n    angry_customer: {min_anger: 0.3}\n", 2,
         "unknown tier ['gold']"),
        ("overrides:\n  - match: {brand: A}\n    angry_customer:\n      min_anger: 3\n", 4,
         "overrides.0.angry_customer.min_anger"),
        ("overrides:\n  - match: {brand: A}\n\n    brand_spike: {windw: 1m}\n", 4,
         "overrides.0.brand_spike.windw: unknown setting"),
        ("overrides:\n  - match: {tier: free}\n    brand_spike: {window: 1m}\n", 2,
         "cannot match a tier"),
        ("overrides:\n  - match: {}\n    brand_spike: {window: 1m}\n", 2, "at least one of"),
        ("brand_spike:\n  negative_k_sigma: 2\n  recover_k_sigma: 2\n", 1, "recover_k_sigma must"),
        ("version: 2\n", 1, "version: Input should be 1"),
        ("angry_customer:\n  min_anger: [0.5\n", 3, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)  # fmt: skip
def test_bad_rules_are_rejected_naming_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    message = str(caught.value)
    assert f"rules.yaml:line {line}:" in message, message
    assert says in message, message


def test_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_worker_refuses_to_start_with_bad_rules(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("brand_spike:\n  window: -5m\n")
    env = {"MOODPIPE_ALERT_RULES": str(bad), "PATH": "", "HOME": str(tmp_path)}
    for command in (["alerts", "check"], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *command],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"{bad}:line 2: brand_spike.window" in done.stderr, done.stdout + done.stderr


def test_worker_refuses_to_start_with_a_bad_reply_playbook(tmp_path: Path) -> None:
    bad = tmp_path / "playbook.yaml"
    bad.write_text("version: 1\nreviewed_by: leads\nreviewed_at: 2026-12-04\nentries:\n"
                   "  - {id: a, match: {emotion: rage}, tone: calm, next_step: call,\n"
                   "     template: 'Hello about {ticket_id}'}\n")  # fmt: skip
    env = {"MOODPIPE_REPLY_PLAYBOOK": str(bad), "PATH": "", "HOME": str(tmp_path)}
    for command in (["alerts", "playbook"], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *command],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"{bad}:line 5: entries.0.match.emotion: unknown emotion group" in done.stderr
        assert "Traceback" not in done.stderr

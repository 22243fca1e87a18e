"""Alerting: angry customers and brand mood spikes, raised from the scored stream."""

from pipeline.alerts.models import Alert, ScoredEvent
from pipeline.alerts.rules import AlertRules, RulesError, load_rules

__all__ = ["Alert", "AlertRules", "RulesError", "ScoredEvent", "load_rules"]

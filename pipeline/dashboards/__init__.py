"""Grafana dashboards as code, their macros, and publishing them."""

"""Outage or data? Classifying failures, retrying outages, isolating poison records."""

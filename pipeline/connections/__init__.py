"""Connections to the services: Kafka (with its topics) and Triton's TLS options."""

"""Local runtime: the real Kafka broker, tritonserver and embedded ClickHouse on 127.0.0.1."""

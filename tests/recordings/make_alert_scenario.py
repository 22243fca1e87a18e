"""Re-create alert-scenario.mprec: the alert scenario's posts and tickets, really recorded.

    python tests/recordings/make_alert_scenario.py

Like make_sample.py: a private broker on free ports, the records of
`pipeline.traffic.scenarios.alert_scenario()` produced to social-posts and
support-tickets (keyed by brand and customer), recorded with `moodpipe record`'s code.
The golden file is tests/golden/alert-scenario.json.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from pipeline.local.runtime import LocalRuntime
from pipeline.recording.record import record_topics
from pipeline.settings import Settings
from pipeline.testing.plugin import free_port
from pipeline.topics import ensure_topics
from pipeline.traffic import produce
from pipeline.traffic.scenarios import alert_scenario

HERE = Path(__file__).parent


def main() -> None:
    scenario = alert_scenario()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({
            "MOODPIPE_DATA_DIR": tmp,
            "MOODPIPE_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            "MOODPIPE_KAFKA_CONTROLLER_PORT": str(free_port()),
        })  # fmt: skip
        settings = Settings()
        runtime = LocalRuntime(settings)
        runtime.up(["kafka"])
        try:
            topics = {"posts": "social-posts", "tickets": "support-tickets"}
            asyncio.run(ensure_topics(settings, list(topics.values()), partitions=4))

            async def go() -> None:
                for role, topic in topics.items():
                    records = [r.record for r in scenario.records if r.role == role]
                    await produce(settings.kafka_bootstrap, topic, records)
                trailer = await record_topics(
                    settings.kafka_bootstrap, list(topics.values()), HERE / "alert-scenario.mprec"
                )
                print(f"recorded {trailer['records']} records")

            asyncio.run(go())
        finally:
            runtime.down()


if __name__ == "__main__":
    main()

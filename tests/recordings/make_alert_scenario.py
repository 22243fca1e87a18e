"""Re-create alert-scenario.mprec: the alert scenario's posts and tickets, really recorded.

    python tests/recordings/make_alert_scenario.py

Like make_sample.py: a private broker on free ports, the records of
`pipeline.traffic.scenarios.alert_scenario()` produced to social-posts and
support-tickets (keyed by brand and customer), recorded with `moodpipe record`'s code.
The golden file is tests/golden/alert-scenario.json.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from private_broker import TOPICS, private_broker  # this folder (run as a script)

from pipeline.recording.record import record_topics
from pipeline.traffic import produce
from pipeline.traffic.scenarios import alert_scenario

HERE = Path(__file__).parent


def main() -> None:
    scenario = alert_scenario()
    topics = dict(zip(("posts", "tickets"), TOPICS, strict=True))
    with private_broker() as settings:

        async def go() -> None:
            for role, topic in topics.items():
                records = [r.record for r in scenario.records if r.role == role]
                await produce(settings.kafka_bootstrap, topic, records)
            trailer = await record_topics(
                settings.kafka_bootstrap, list(topics.values()), HERE / "alert-scenario.mprec"
            )
            print(f"recorded {trailer['records']} records")

        asyncio.run(go())


if __name__ == "__main__":
    main()

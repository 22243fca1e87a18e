"""Re-create alert-scenario.mprec (or thread-scenario.mprec): a scenario's posts and
tickets, really recorded.

    python tests/recordings/make_alert_scenario.py           # alert-scenario.mprec
    python tests/recordings/make_alert_scenario.py thread    # thread-scenario.mprec

Like make_sample.py: a private broker on free ports, the records of
`pipeline.traffic.scenarios.alert_scenario()` produced to social-posts and
support-tickets (keyed by brand and customer), recorded with `moodpipe record`'s code.
The golden files are tests/golden/alert-scenario.json and thread-scenario.json. The
thread scenario is produced in its list order, which puts one agent reply after the
customer's next turn (out of order on purpose).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from private_broker import TOPICS, private_broker  # this folder (run as a script)

from pipeline.recording.record import record_topics
from pipeline.traffic import produce
from pipeline.traffic.scenarios import alert_scenario, thread_scenario

HERE = Path(__file__).parent


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "alert"
    scenario = thread_scenario() if which == "thread" else alert_scenario()
    topics = dict(zip(("posts", "tickets"), TOPICS, strict=True))
    with private_broker() as settings:

        async def go() -> None:
            for role, topic in topics.items():
                records = [r.record for r in scenario.records if r.role == role]
                await produce(settings.kafka_bootstrap, topic, records)
            trailer = await record_topics(
                settings.kafka_bootstrap, list(topics.values()), HERE / f"{which}-scenario.mprec"
            )
            print(f"recorded {trailer['records']} records")

        asyncio.run(go())


if __name__ == "__main__":
    main()

"""Re-create sample.mprec: sample posts and tickets with bad records, really recorded.

    python tests/recordings/make_sample.py

Starts a private local runtime on free ports, produces the traffic to topics named
like production's (social-posts, support-tickets), records both with
`moodpipe record`'s code, and stops the runtime. The golden file for it is
tests/golden/sample.json (MOODPIPE_UPDATE_GOLDEN=1 pytest tests/test_replay_golden.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from private_broker import private_broker  # this folder (run as a script)

from pipeline.recording.record import record_topics
from pipeline.traffic import bad_records, produce, sample_posts, sample_tickets

HERE = Path(__file__).parent
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def main() -> None:
    with private_broker() as settings:
        posts = sample_posts(40, run_id="sample", seed=7, now=NOW)
        tickets = sample_tickets(25, run_id="sample", seed=8, now=NOW)
        bad_posts = bad_records("post", run_id="sample")
        bad_tickets = bad_records("ticket", run_id="sample")

        async def go() -> None:
            await produce(
                settings.kafka_bootstrap, "social-posts", posts[:20] + bad_posts + posts[20:]
            )
            await produce(
                settings.kafka_bootstrap,
                "support-tickets",
                bad_tickets[:5] + tickets + bad_tickets[5:],
            )
            trailer = await record_topics(
                settings.kafka_bootstrap,
                ["social-posts", "support-tickets"],
                HERE / "sample.mprec",
            )
            print(f"recorded {trailer['records']} records")

        asyncio.run(go())


if __name__ == "__main__":
    main()

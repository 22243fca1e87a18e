"""Re-create sample.mprec: sample posts and tickets with bad records, really recorded.

    python tests/recordings/make_sample.py

Starts a private local runtime on free ports, produces the traffic to topics named
like production's (social-posts, support-tickets), records both with
`moodpipe record`'s code, and stops the runtime. The golden file for it is
tests/golden/sample.json (MOODPIPE_UPDATE_GOLDEN=1 pytest tests/test_replay_golden.py).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pipeline.local.runtime import LocalRuntime
from pipeline.recording.record import record_topics
from pipeline.settings import Settings
from pipeline.testing.plugin import free_port
from pipeline.topics import ensure_topics
from pipeline.traffic import bad_records, produce, sample_posts, sample_tickets

HERE = Path(__file__).parent
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def main() -> None:
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
            asyncio.run(ensure_topics(settings, ["social-posts", "support-tickets"], partitions=4))
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
        finally:
            runtime.down()


if __name__ == "__main__":
    main()

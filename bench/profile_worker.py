"""Profile a worker under paced load with py-spy (the pipeline's own cost, null model).

Usage: python bench/profile_worker.py [RATE] [SECONDS] [OUT.txt]
Starts the local runtime, a worker on fresh topics with MOODPIPE_MODEL_NAME=emotion_null,
produces RATE posts/s for SECONDS, records the worker with `py-spy record --format raw`
and prints the top frames (own time and total time), GIL-holding samples only.
"""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import time
from pathlib import Path

from pipeline.bench.throughput import _bench_settings, _paced_produce
from pipeline.connections.topics import ensure_topics
from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import start_worker, stop_worker
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.traffic import sample_posts


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    out = sys.argv[3] if len(sys.argv) > 3 else "/tmp/worker-profile.txt"
    tag = f"prof{int(time.time())}"
    settings, env = _bench_settings(Settings(), tag, 64, model_name="emotion_null")
    runtime = LocalRuntime(settings)
    runtime.up()
    asyncio.run(ensure_topics(settings))
    ClickHouseSink(settings).migrate()
    worker = start_worker(runtime.log_path(f"worker-{tag}"), env)
    try:
        time.sleep(8)  # join the group
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(worker.pid), "--format", "raw", "--gil",
             "--duration", str(int(seconds) - 2), "--rate", "200", "-o", out + ".raw"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        posts = sample_posts(int(rate * seconds), run_id=tag, seed=5)
        asyncio.run(_paced_produce(settings, posts, rate))
        spy.wait(60)
    finally:
        stop_worker(worker)
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in Path(out + ".raw").read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    with open(out, "w") as f:
        f.write(f"{samples} GIL samples at 200/s over {seconds - 2:.0f}s, {rate:.0f} posts/s\n")
        f.write("own time:\n")
        for frame, n in own.most_common(25):
            f.write(f"{100 * n / samples:5.1f}%  {frame}\n")
        f.write("total time:\n")
        for frame, n in total.most_common(40):
            f.write(f"{100 * n / samples:5.1f}%  {frame}\n")
    print(Path(out).read_text())


if __name__ == "__main__":
    main()

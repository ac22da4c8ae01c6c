"""Time whole ``sagas replay`` rebuilds of one event log: fold, changelog and store written.

    .venv/bin/python -m bench.rebuild_bench write --bootstrap 127.0.0.1:19092 --workflows 300000
    .venv/bin/python -m bench.rebuild_bench replay --bootstrap 127.0.0.1:19092 --prefix P --runs 3

``write`` writes the visibility benchmark's log of that many orders (two search
attributes each, 1% in flight: five store keys per workflow, as a deployment with
visibility keeps them) under a fresh topic prefix, which it prints, and leaves the
processor group at its end. ``replay`` rebuilds from that log: before each run it deletes
the changelog and creates it again (a lost changelog, so that the whole of it is
written) and starts from an empty state directory; it prints one JSON line per run.

The log is written once and every run reads the same one, so two checkouts of the code
can be timed in turns on it (old, new, new, old...) by running ``replay`` from each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bench.visibility_log import VERSIONS, write_log
from processors.replay import replay
from processors.runner import provision
from sagas.config import KafkaSettings
from topics.naming import TopicNames
from topics.offset_reset import reset_offsets


def recreate_changelog(kafka: KafkaSettings) -> None:
    """Delete the changelog and create it again, empty: the replay then writes all of it."""
    topic = TopicNames(VERSIONS.name, kafka.topic_prefix).state_changelog
    admin = AdminClient(kafka.client_config())
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 60
    while True:
        try:
            if topic not in admin.list_topics(timeout=10).topics:
                provision(VERSIONS, kafka)
                return
        except KafkaException:
            pass  # the broker may refuse the name while the deletion completes
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic} could not be created again within 60 s")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["write", "replay"])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("SAGAS_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="bootstrap servers of the broker (default: $SAGAS_BOOTSTRAP_SERVERS or :9092)",
    )
    parser.add_argument("--workflows", type=int, default=300_000, help="orders to write")
    parser.add_argument("--prefix", help="the topic prefix `write` printed (for `replay`)")
    parser.add_argument("--runs", type=int, default=1, help="rebuilds to time")
    args = parser.parse_args(argv)
    if args.mode == "write":
        kafka = KafkaSettings(
            bootstrap_servers=args.bootstrap, topic_prefix=f"rebuild{int(time.time())}."
        )
        provision(VERSIONS, kafka)
        events = write_log(kafka, args.workflows)
        names = TopicNames(VERSIONS.name, kafka.topic_prefix)
        reset_offsets(kafka.client_config(), names.processor_group, names.events, "latest")
        print(json.dumps({"prefix": kafka.topic_prefix, "workflows": args.workflows,
                          "events": events}))  # fmt: skip
        return 0
    if not args.prefix:
        parser.error("replay needs --prefix (what `write` printed)")
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, topic_prefix=args.prefix)
    for _ in range(args.runs):
        recreate_changelog(kafka)
        with tempfile.TemporaryDirectory(prefix="sagas-rebuild-") as state_dir:
            cpu = os.times()
            report = replay(VERSIONS, kafka, Path(state_dir))
            after = os.times()
        print(json.dumps({
            "events": report.events,
            "seconds": round(report.seconds, 2),
            "events_per_s": round(report.events_per_second),
            "changelog_records": sum(p.changelog_records for p in report.partitions),
            "this_process_cpu_s": round(after.user + after.system - cpu.user - cpu.system, 2),
            "load_average": round(os.getloadavg()[0], 2),
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

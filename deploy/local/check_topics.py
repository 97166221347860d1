#!/usr/bin/env python3
"""List the topics under a prefix on a Kafka-protocol broker, with their partition counts.

Integration tests use it to check what `ttlc topics apply` created, through a client that is
independent of the Rust code under test (confluent-kafka's bundled librdkafka; Debian's
librdkafka 2.0.2 cannot talk to Tansu). Run it with the local stack's venv:

    /opt/ttlc/venv/bin/python deploy/local/check_topics.py --brokers 127.0.0.1:9092 --prefix ttlc.

Prints one JSON object, `{"<topic>": <partition_count>, ...}`, sorted by name. Exits 2 when the
broker cannot be reached or the metadata request fails, so a test can tell "no topics" (`{}`)
from "no broker".
"""

import argparse
import json
import logging
import sys

try:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
except ImportError:  # pragma: no cover - depends on the environment
    print(
        "check_topics: confluent-kafka is not installed; use /opt/ttlc/venv/bin/python "
        "(created by deploy/local/stack.sh up)",
        file=sys.stderr,
    )
    sys.exit(3)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--brokers", default="127.0.0.1:9092", help="bootstrap servers, comma separated"
    )
    parser.add_argument(
        "--prefix", default="", help="only topics whose name starts with this (default: all)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="metadata request timeout in seconds"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show librdkafka's own log lines on stderr"
    )
    return parser.parse_args(argv)


def list_topics(brokers, prefix, timeout, verbose=False):
    """Returns {topic: partition_count} for the topics under `prefix`."""
    # librdkafka logs every failed connection attempt; one clear error from us is enough.
    logger = logging.getLogger("librdkafka")
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    admin = AdminClient(
        {
            "bootstrap.servers": brokers,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
            "logger": logger,
        }
    )
    metadata = admin.list_topics(timeout=timeout)
    topics = {}
    for name, topic in metadata.topics.items():
        if not name.startswith(prefix):
            continue
        if topic.error is not None:
            raise KafkaException(topic.error)
        topics[name] = len(topic.partitions)
    return dict(sorted(topics.items()))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        topics = list_topics(args.brokers, args.prefix, args.timeout, args.verbose)
    except KafkaException as err:
        print(f"check_topics: cannot list topics on {args.brokers}: {err}", file=sys.stderr)
        return 2
    json.dump(topics, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

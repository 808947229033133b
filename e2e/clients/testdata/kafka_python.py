"""kafka-python (python3-kafka) side of the clients e2e tests.

usage:
  kafka_python.py produce BOOTSTRAP TOPIC RECORDS_JSON API_VERSION
  kafka_python.py group   BOOTSTRAP TOPIC GROUP COUNT API_VERSION

API_VERSION is "auto" (let the client probe the broker) or "X.Y.Z".
RECORDS_JSON is a list of {"k": hex or null, "v": hex, "h": [[name, hex]]}.
Prints one JSON object: {"produced": n, "records": [...], "info": {...}};
produce reports each record with the partition and offset it was
acknowledged at, group the records it consumed (then committed).
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer

TIMEOUT_S = 60


def api_version(arg):
    if arg == "auto":
        return None
    return tuple(int(x) for x in arg.split("."))


def as_json(partition, offset, key, value, headers):
    return {
        "p": partition,
        "o": offset,
        "k": None if key is None else key.hex(),
        "v": value.hex(),
        "h": [[k, (v or b"").hex()] for k, v in (headers or [])],
    }


def produce(bootstrap, topic, path, version):
    with open(path) as f:
        records = json.load(f)
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap],
        api_version=api_version(version),
        acks="all",
        linger_ms=5,
        retries=5,
        max_in_flight_requests_per_connection=1,
    )
    futures = []
    for r in records:
        key = None if r["k"] is None else bytes.fromhex(r["k"])
        headers = [(k, bytes.fromhex(v)) for k, v in r["h"]]
        futures.append(producer.send(topic, key=key, value=bytes.fromhex(r["v"]), headers=headers))
    producer.flush(timeout=TIMEOUT_S)
    acked = []
    for r, fut in zip(records, futures):
        md = fut.get(timeout=TIMEOUT_S)
        acked.append({"p": md.partition, "o": md.offset, "k": r["k"], "v": r["v"], "h": r["h"]})
    info = {"api_version": list(producer.config["api_version"])}
    producer.close(timeout=TIMEOUT_S)
    return {"produced": len(acked), "records": acked, "info": info}


def group(bootstrap, topic, group_id, count, version):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[bootstrap],
        api_version=api_version(version),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                got.append(as_json(m.partition, m.offset, m.key, m.value, m.headers))
    consumer.commit()  # the positions of every assigned partition, synchronously
    info = {"api_version": list(consumer.config["api_version"])}
    consumer.close(autocommit=False)
    return {"produced": 0, "records": got, "info": info}


def main(argv):
    if argv[1] == "produce":
        result = produce(argv[2], argv[3], argv[4], argv[5])
    elif argv[1] == "group":
        result = group(argv[2], argv[3], argv[4], int(argv[5]), argv[6])
    else:
        raise SystemExit("unknown mode %r" % argv[1])
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)

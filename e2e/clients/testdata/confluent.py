"""confluent-kafka (python3-confluent-kafka, librdkafka) side of the
clients e2e tests.

usage:
  confluent.py produce BOOTSTRAP TOPIC RECORDS_JSON
  confluent.py group   BOOTSTRAP TOPIC GROUP COUNT

RECORDS_JSON is a list of {"k": hex or null, "v": hex, "h": [[name, hex]]}.
Prints one JSON object: {"produced": n, "records": [...], "info": {...}};
produce (idempotent) reports each record with the partition and offset it
was acknowledged at, group the records it consumed (then committed).
"""
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer

TIMEOUT_S = 60


def as_json(partition, offset, key, value, headers):
    return {
        "p": partition,
        "o": offset,
        "k": None if key is None else key.hex(),
        "v": value.hex(),
        "h": [[k, (v or b"").hex()] for k, v in (headers or [])],
    }


def produce(bootstrap, topic, path):
    with open(path) as f:
        records = json.load(f)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    })
    acked = [None] * len(records)
    errors = []

    def on_delivery(index):
        def report(err, msg):
            if err is not None:
                errors.append("record %d: %s" % (index, err))
                return
            r = records[index]
            acked[index] = {"p": msg.partition(), "o": msg.offset(), "k": r["k"], "v": r["v"], "h": r["h"]}
        return report

    for i, r in enumerate(records):
        key = None if r["k"] is None else bytes.fromhex(r["k"])
        headers = [(k, bytes.fromhex(v)) for k, v in r["h"]]
        while True:
            try:
                producer.produce(topic, value=bytes.fromhex(r["v"]), key=key, headers=headers,
                                 on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: serve delivery reports
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    if left or errors:
        raise SystemExit("%d records undelivered, errors: %s" % (left, errors[:5]))
    info = {"librdkafka": confluent_kafka.libversion()[0]}
    return {"produced": len(records), "records": acked, "info": info}


def group(bootstrap, topic, group_id, count):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 200,
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=1000, timeout=0.5):
            if m.error() is not None:
                raise SystemExit("consume: %s" % m.error())
            got.append(as_json(m.partition(), m.offset(), m.key(), m.value(), m.headers()))
    committed = consumer.commit(asynchronous=False)  # the positions of every assigned partition
    info = {"librdkafka": confluent_kafka.libversion()[0],
            "committed": sorted([tp.partition, tp.offset] for tp in committed or [])}
    consumer.close()
    return {"produced": 0, "records": got, "info": info}


def main(argv):
    if argv[1] == "produce":
        result = produce(argv[2], argv[3], argv[4])
    elif argv[1] == "group":
        result = group(argv[2], argv[3], argv[4], int(argv[5]))
    else:
        raise SystemExit("unknown mode %r" % argv[1])
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)

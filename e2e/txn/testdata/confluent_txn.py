"""confluent-kafka (librdkafka) transactions against a Tributary broker.

argv: bootstrap address, topic. Commits one transaction of 5 records
("committed-0".."committed-4"), aborts one of 3 ("aborted-0".."aborted-2"),
appends a non-transactional "sentinel", then reads the topic from the start
with a read_committed and a read_uncommitted consumer up to the sentinel.
Prints JSON: {"committed": [...], "uncommitted": [...]}; exits non-zero with
a message on stderr on any failure.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

bootstrap, topic = sys.argv[1], sys.argv[2]
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))


p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "confluent-txn",
              "transaction.timeout.ms": 60000, "linger.ms": 5})
p.init_transactions(30)

p.begin_transaction()
for i in range(5):
    p.produce(topic, value=b"committed-%d" % i, partition=0, on_delivery=on_delivery)
p.commit_transaction(30)

p.begin_transaction()
for i in range(3):
    p.produce(topic, value=b"aborted-%d" % i, partition=0, on_delivery=on_delivery)
p.flush(30)
p.abort_transaction(30)
if errors:
    sys.exit("delivery errors: %s" % errors)

plain = Producer({"bootstrap.servers": bootstrap})
plain.produce(topic, value=b"sentinel", partition=0, on_delivery=on_delivery)
plain.flush(30)
if errors:
    sys.exit("sentinel delivery error: %s" % errors)


def read(isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "confluent-txn-" + isolation,
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                sys.exit("consume (%s): %s" % (isolation, m.error()))
            v = m.value().decode()
            if v == "sentinel":
                return out
            out.append(v)
        sys.exit("consume (%s): no sentinel within 60s, got %s" % (isolation, out))
    finally:
        c.close()


print(json.dumps({"committed": read("read_committed"), "uncommitted": read("read_uncommitted")}))

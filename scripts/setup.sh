#!/usr/bin/env bash
# Installs what the tests need when it is missing. Idempotent and quiet when
# everything is present; run by `make test` (and so by CI on a clean machine).
#
# Debian packages:
#   kcat                     librdkafka's command-line client
#   python3-kafka            kafka-python, for /usr/bin/python3
#   python3-confluent-kafka  confluent-kafka (librdkafka), for /usr/bin/python3
#   nats-server              NATS server for process-level e2e tests
# The Python modules are Debian's and live under /usr/bin/python3, which is not
# necessarily the python3 first on PATH (pyenv): tests call /usr/bin/python3.
set -euo pipefail

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
/usr/bin/python3 -c 'import kafka' >/dev/null 2>&1 || need+=(python3-kafka)
/usr/bin/python3 -c 'import confluent_kafka' >/dev/null 2>&1 || need+=(python3-confluent-kafka)

if [ ${#need[@]} -gt 0 ]; then
	echo "setup: installing ${need[*]}"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: kcat, nats-server, python3-kafka, python3-confluent-kafka present"

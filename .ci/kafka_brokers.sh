# Sourced by .ci/run: real Apache Kafka brokers for the Kafka tests (tests/kafka_support.py).
#
# When ../shared/kafka exists beside the checkout, start its broker twice, empty: one with
# auto-creation on (the stock default) and one with it off (as many production clusters), on
# TAPE_CI_KAFKA_PORTS (default "19092 19192"; each also takes the next port for its
# controller). Export TAPE_TEST_KAFKA naming both, and stop both when the script exits. Their
# state lives in a temporary directory of its own, so a developer's broker data is never wiped.
# A port already in use is an error: CI does not test against a broker it did not start.

kafka_script=../shared/kafka/broker
kafka_ports=(${TAPE_CI_KAFKA_PORTS:-19092 19192})
kafka_started=()
kafka_state=""

stop_kafka_brokers() {
    local port
    for port in "${kafka_started[@]}"; do
        KAFKA_BROKER_PORT=$port KAFKA_BROKER_STATE=$kafka_state/$port "$kafka_script" stop || true
    done
    kafka_started=()
    [ -n "$kafka_state" ] && rm -rf "$kafka_state"
    kafka_state=""
}

start_kafka_brokers() {
    if [ ! -x "$kafka_script" ]; then
        echo ".ci/run: no $kafka_script: the real-broker Kafka tests will skip (or fail with CI set)" >&2
        return 0
    fi
    local port i auto bootstraps=()
    for port in "${kafka_ports[@]}"; do
        for i in "$port" $((port + 1)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$i") 2>/dev/null; then
                echo ".ci/run: 127.0.0.1:$i is already in use (a Kafka broker left running?). CI starts" \
                    "its own empty brokers on ${kafka_ports[*]}: stop it (KAFKA_BROKER_PORT=$port" \
                    "$kafka_script stop) or choose other ports with TAPE_CI_KAFKA_PORTS" >&2
                return 1
            fi
        done
    done
    kafka_state=$(mktemp -d "${TMPDIR:-/tmp}/tapedeck-ci-kafka.XXXXXX")
    trap stop_kafka_brokers EXIT
    auto=true
    for port in "${kafka_ports[@]}"; do
        kafka_started+=("$port")
        KAFKA_BROKER_PORT=$port KAFKA_BROKER_STATE=$kafka_state/$port KAFKA_BROKER_FRESH=1 \
            KAFKA_BROKER_AUTO_CREATE=$auto "$kafka_script" start
        bootstraps+=("127.0.0.1:$port")
        auto=false
    done
    TAPE_TEST_KAFKA=$(IFS=,; echo "${bootstraps[*]}")
    export TAPE_TEST_KAFKA
    echo ".ci/run: Kafka tests run on the mock cluster and on $TAPE_TEST_KAFKA"
}

#!/usr/bin/env bash
# `make test` after lint: the whole suite in three parts, in two phases.
#
#   phase 1, side by side:  the runtime environment's tests (tests/runtime, tests/conformance: TensorFlow-bound)
#                           and the end-to-end runs (tests/e2e: whole DAG runs, mostly waiting on Airflow, on hosts
#                           and on model servers)
#   phase 2, alone:         the orchestrator's unit, fleet and browser tests, which measure latencies and count
#                           failed client requests under load, so nothing else may run beside them
#
# On 2 cores the two halves of phase 1 overlap well (one waits while the other computes): the suite takes about
# 20 minutes less than in sequence. Each line of phase 1 is prefixed with its part; each part's exit status is
# reported at the end. Exit status: 0 when every part passed, 5 when a part collected no tests (pytest's own
# code, which .ci/run turns into a failure), else 1.
set -uo pipefail
cd "$(dirname "$0")/.."

# Parts can be narrowed for a quick look (words split on spaces): RUNTIME_TESTS, E2E_TESTS, REST_TESTS.
read -r -a runtime_tests <<< "${RUNTIME_TESTS:-tests/runtime tests/conformance}"
read -r -a e2e_tests <<< "${E2E_TESTS:-tests/e2e}"
read -r -a rest_tests <<< "${REST_TESTS:-tests --ignore=tests/e2e}"
PYTEST=(.venv/bin/pytest -p no:cacheprovider --durations=15)
RUNTIME_PYTEST=(.venv-runtime/bin/python -m pytest -p no:cacheprovider --durations=15)

prefixed() {  # run "$@" with every output line prefixed by [$label]; the exit status is the command's
  local label=$1
  shift
  "$@" 2>&1 | sed -u "s/^/[$label] /"
}

started=$SECONDS
prefixed runtime "${RUNTIME_PYTEST[@]}" "${runtime_tests[@]}" &
runtime_pid=$!
prefixed e2e "${PYTEST[@]}" "${e2e_tests[@]}" &
e2e_pid=$!
wait "$runtime_pid"; runtime_status=$?
wait "$e2e_pid"; e2e_status=$?
echo "phase 1 done in $(( (SECONDS - started) / 60 )) min: runtime exit $runtime_status, e2e exit $e2e_status"

phase2=$SECONDS
"${PYTEST[@]}" "${rest_tests[@]}"
rest_status=$?
echo "phase 2 done in $(( (SECONDS - phase2) / 60 )) min: unit, dags, fleet, browser exit $rest_status"
echo "suite: runtime $runtime_status, e2e $e2e_status, orchestrator $rest_status in $(( (SECONDS - started) / 60 )) min"

for status in "$runtime_status" "$e2e_status" "$rest_status"; do
  if [ "$status" -eq 5 ]; then exit 5; fi
done
for status in "$runtime_status" "$e2e_status" "$rest_status"; do
  if [ "$status" -ne 0 ]; then exit 1; fi
done
exit 0

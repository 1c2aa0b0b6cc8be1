#!/usr/bin/env bash
# `make test` after lint: the whole suite in two phases.
#
#   phase 1, two streams side by side:
#     A  the runtime environment's tests (tests/runtime, tests/conformance: TensorFlow-bound), then the
#        orchestrator's unit and DAG tests, then two end-to-end modules (test_your_own_data.py, test_closed_loop.py)
#     B  the other end-to-end modules (whole DAG runs, mostly waiting on Airflow, on hosts and on model servers)
#   phase 2, alone: the fleet and browser tests, which measure latencies, count failed client requests under load
#     and drive a browser, so nothing else may run beside them
#
# The streams are balanced by measured times (2 cores, local CI of 2026-12-07: A about 50 min, B about 52 min).
# Each line of phase 1 is prefixed with its part; every part's exit status is reported at the end. Exit status:
# 0 when every part passed, 5 when a part collected no tests (pytest's own code, which .ci/run turns into a
# failure), else 1.
set -uo pipefail
cd "$(dirname "$0")/.."

# Parts can be narrowed for a quick look (words split on spaces): RUNTIME_TESTS, SIDE_TESTS, SIDE_E2E_TESTS,
# E2E_TESTS, ALONE_TESTS.
read -r -a runtime_tests <<< "${RUNTIME_TESTS:-tests/runtime tests/conformance}"
read -r -a side_tests <<< "${SIDE_TESTS:-tests --ignore=tests/e2e --ignore=tests/fleet --ignore=tests/browser}"
read -r -a side_e2e_tests <<< "${SIDE_E2E_TESTS:-tests/e2e/test_your_own_data.py tests/e2e/test_closed_loop.py}"
read -r -a e2e_tests <<< "${E2E_TESTS:-tests/e2e --ignore=tests/e2e/test_your_own_data.py --ignore=tests/e2e/test_closed_loop.py}"
read -r -a alone_tests <<< "${ALONE_TESTS:-tests/fleet tests/browser}"
PYTEST=(.venv/bin/pytest -p no:cacheprovider --durations=15)
RUNTIME_PYTEST=(.venv-runtime/bin/python -m pytest -p no:cacheprovider --durations=15)
statuses=$(mktemp -d)
trap 'rm -rf "$statuses"' EXIT

part() {  # part NAME COMMAND...: run it with every output line prefixed by [NAME]; its exit status goes to a file
  local name=$1
  shift
  "$@" 2>&1 | sed -u "s/^/[$name] /"
  echo "${PIPESTATUS[0]}" > "$statuses/$name"
}

started=$SECONDS
(
  part runtime "${RUNTIME_PYTEST[@]}" "${runtime_tests[@]}"
  part unit "${PYTEST[@]}" "${side_tests[@]}"
  part e2e-side "${PYTEST[@]}" "${side_e2e_tests[@]}"
) &
stream_a=$!
part e2e "${PYTEST[@]}" "${e2e_tests[@]}" &
stream_b=$!
wait "$stream_a" "$stream_b"
echo "phase 1 done in $(( (SECONDS - started) / 60 )) min"

phase2=$SECONDS
"${PYTEST[@]}" "${alone_tests[@]}"
echo "$?" > "$statuses/alone"
echo "phase 2 done in $(( (SECONDS - phase2) / 60 )) min"

report=""
worst=0
for name in runtime unit e2e-side e2e alone; do
  status=$(cat "$statuses/$name" 2>/dev/null || echo 1)
  report+="$name $status, "
  if [ "$status" -eq 5 ]; then
    worst=5
  elif [ "$status" -ne 0 ] && [ "$worst" -ne 5 ]; then
    worst=1
  fi
done
echo "suite: ${report%, } (exit statuses) in $(( (SECONDS - started) / 60 )) min"
exit "$worst"

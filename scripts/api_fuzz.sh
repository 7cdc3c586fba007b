#!/usr/bin/env bash
# A long schemathesis run over the shops' and the push API: the suite's schema test
# (tests/shipments/test_schema.py: responses conform, no 5xx, HEAD on every GET, a NUL in every
# string input) with API_FUZZ_EXAMPLES examples per operation instead of the suite's 25.
# Needs DATABASE_URL and REDIS_URL like the tests. Usage: scripts/api_fuzz.sh [examples]
set -euo pipefail
cd "$(dirname "$0")/.."
export API_FUZZ_EXAMPLES="${1:-${API_FUZZ_EXAMPLES:-300}}"
exec .venv/bin/pytest -q -p no:randomly tests/shipments/test_schema.py -k test_api_conforms

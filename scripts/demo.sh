#!/usr/bin/env bash
# One command, no cloud account: starts the local test bed (Key Vault over TLS with its bearer
# challenge, a managed-identity endpoint, STS via moto with every signature checked, the Azure
# Storage emulator for the rotation lease, a Resource Manager holding one consumer app), then runs
# stsbridge against it as a user would — `check`, `rotate`, and as the Functions host does
# (`serve` + host-shaped invocations of HttpRotate and TimerRotate) — and ends where the value is:
# a program calling AWS with the credentials stsbridge published (`eval "$(stsbridge export)"`,
# then the AWS CLI's `sts get-caller-identity`). Every check runs at its production default.
#
# Nothing it starts outlives it: each process is started directly (never through a shell
# function, whose `$!` would be a subshell) and killed on exit, and the script says so at the
# end. scripts/test.sh runs it after the tests and checks that no process was left behind.
#
# It builds only what it runs (stsbridge and the test bed). STSBRIDGE_BIN_DIR=DIR uses binaries
# built elsewhere instead (scripts/test.sh passes its own build), and nothing is compiled.
# The small Python helpers (a free port, printing the invocations' answers) are
# scripts/demo_helpers.py.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [ -n "${STSBRIDGE_BIN_DIR:-}" ]; then
  bin=$STSBRIDGE_BIN_DIR
else
  cargo build --quiet --locked -p stsbridge -p stsbridge-testbed --bins
  bin=${CARGO_TARGET_DIR:-target}/debug
fi
for b in stsbridge testbed; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is not there (STSBRIDGE_BIN_DIR?)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/testbed" up --storage --consumer-app demo-consumer-app \
  --env-file "$work/env" --settings-file "$work/local.settings.json" >"$work/testbed.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -f "$work/env" ] && break; sleep 0.1; done
[ -f "$work/env" ] || { cat "$work/testbed.log" >&2; echo "demo: the test bed did not start" >&2; exit 1; }
# The settings a Function App would have; the vault is https://kv.vault.test, reached through
# the test bed's proxy (HTTPS_PROXY), so the challenge check stays at its production default.
# shellcheck disable=SC1091
source "$work/env"
export PATH="$bin:$PWD/.venv/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "stsbridge check   (validates the settings, mints nothing)"
stsbridge check

step "stsbridge rotate  (one rotation: read the IAM user's key from Key Vault, GetSessionToken, verify, publish)"
stsbridge rotate

port=$(python3 scripts/demo_helpers.py free-port)
step "stsbridge serve   (as the Functions host starts it, on FUNCTIONS_CUSTOMHANDLER_PORT=$port)"
FUNCTIONS_CUSTOMHANDLER_PORT=$port "$bin/stsbridge" serve >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done

invoke() { curl -s -X POST "http://127.0.0.1:$port/$1" -H 'Content-Type: application/json' -d "$2"; }
show_res() { python3 scripts/demo_helpers.py show-res; }

step "POST /HttpRotate  (unforced: the set minted a moment ago is fresh)"
invoke HttpRotate '{"Data":{"req":{"Url":"http://localhost/api/HttpRotate","Method":"POST","Query":{},"Headers":{}}},"Metadata":{}}' | show_res

step "POST /HttpRotate?force=true"
invoke HttpRotate '{"Data":{"req":{"Url":"http://localhost/api/HttpRotate?force=true","Method":"POST","Query":{"force":"true"},"Headers":{}}},"Metadata":{}}' | show_res

step "GET /HttpRotate   (state only; never mints)"
invoke HttpRotate '{"Data":{"req":{"Url":"http://localhost/api/HttpRotate","Method":"GET","Query":{},"Headers":{}}},"Metadata":{}}' | show_res

step "POST /TimerRotate (the hourly trigger; the invocation's Logs)"
invoke TimerRotate '{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}' \
  | python3 scripts/demo_helpers.py timer-logs

step "stsbridge show    (what is stored: key id, expiry, versions — never a secret)"
stsbridge show

step "A program using the published credentials: eval \"\$(stsbridge export)\", then the AWS CLI"
eval "$(stsbridge export)"
echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID (a session key, until $AWS_CREDENTIAL_EXPIRATION)"
aws sts get-caller-identity --region "$AwsRegion" --output json

kill "${pids[@]}" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
printf '\nDone: every process this demo started has stopped. To keep the test bed running for your own experiments: %s/testbed up --storage\n' "$bin"

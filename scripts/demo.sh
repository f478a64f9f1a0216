#!/usr/bin/env bash
# One command, no cloud account: starts the local test bed (Key Vault over TLS, a managed-identity
# endpoint, STS via moto), then runs stsbridge against it three ways — `check`, `rotate`, and as
# the Functions host would (`serve` + host-shaped invocations of HttpRotate and TimerRotate) —
# and shows what was published. Everything stops when the script ends. The small Python helpers
# (a free port, printing the invocations' answers) are scripts/demo_helpers.py.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --quiet --workspace --bins
bin=${CARGO_TARGET_DIR:-target}/debug
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/testbed" up --env-file "$work/env" --settings-file "$work/local.settings.json" >"$work/testbed.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -f "$work/env" ] && break; sleep 0.1; done
[ -f "$work/env" ] || { cat "$work/testbed.log" >&2; echo "demo: the test bed did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/env"
# The env file reaches the vault as https://kv.vault.test through the test bed's proxy
# (HTTPS_PROXY), so every check runs at its production default.
sb() { "$bin/stsbridge" "$@"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "stsbridge check   (validates the settings, mints nothing)"
sb check

step "stsbridge rotate  (one rotation: read the IAM user's key from Key Vault, GetSessionToken, verify, publish)"
sb rotate

port=$(python3 scripts/demo_helpers.py free-port)
step "stsbridge serve   (as the Functions host starts it, on FUNCTIONS_CUSTOMHANDLER_PORT=$port)"
FUNCTIONS_CUSTOMHANDLER_PORT=$port sb serve >"$work/serve.log" 2>&1 &
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
sb show

printf '\nThe test bed stops now. To keep it running for your own experiments: %s/testbed up\n' "$bin"

#!/bin/bash
# The first-run experience, measured: `policyqa serve` with an empty cache builds the demo knowledge base (in a
# child process, printing progress lines), then serves it; prints the serving process's resident memory when
# ready and after 5 questions. The rebuilt encoder is reused from ~/.cache/policyqa/models when it is there.
#   bash scripts/first_run_rss.sh            # uses a fresh cache under /tmp
set -euo pipefail
CACHE=${CACHE:-$(mktemp -d /tmp/policyqa-first-run.XXXX)}
PORT=${PORT:-18765}
POLICYQA=${POLICYQA:-$(dirname "$0")/../.venv/bin/policyqa}
[ -d "$HOME/.cache/policyqa/models" ] && ln -sfn "$HOME/.cache/policyqa/models" "$CACHE/models"
export HF_HUB_OFFLINE=1 POLICYQA_CACHE_DIR="$CACHE" POLICYQA_RATE_LIMIT_PER_MINUTE=0
start=$(date +%s)
"$POLICYQA" serve --port "$PORT" > "$CACHE/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
  sleep 2
  kill -0 $PID 2>/dev/null || { echo "serve exited:"; tail -20 "$CACHE/serve.log"; exit 1; }
done
echo "ready after $(( $(date +%s) - start )) s (log: $CACHE/serve.log)"
grep -E "VmRSS|VmHWM" /proc/$PID/status
for q in "失业保险金能领多长时间？" "老楼加装电梯要几户同意？" "春节放几天假" "公积金缴存比例是多少" "红烧肉怎么做"; do
  curl -s -X POST -H 'Content-Type: application/json' -d "{\"question\": \"$q\"}" "http://127.0.0.1:$PORT/v1/ask" > /dev/null
done
echo "after 5 questions:"
grep -E "VmRSS|VmHWM" /proc/$PID/status

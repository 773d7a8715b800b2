# tests/hub/hub_lib.sh: run the stand-in Hub (tests/hub/hub_server.py) from a shell test.
# Source it after tests/lib.sh (which sets T_TMP and cds to the repository root):
#
#   source tests/lib.sh; source tests/hub/hub_lib.sh
#   hub_start                 # serves the default repos (below); or hub_start CONFIG.json
#   "$FORGE" download forge-test/stories260K      # HF_ENDPOINT and HF_HUB_CACHE point at it
#   check_eq "no request offline" "$(hub_requests)" 0   (after hub_reset)
#   hub_stop                  # also done at exit
#
# hub_start isolates the test from the user's environment: HF_HOME, HF_HUB_CACHE (a fresh
# $T_TMP/cache), HF_ENDPOINT (the stand-in), and no HF_TOKEN / token file / offline flag.
# Default repos (commit hashes from `hub_commit REPO [REV]`):
#   forge-test/stories260K           tests/fixtures/stories260K (single model.safetensors);
#                                    revision "v1": the same with another generation_config.json
#   forge-test/stories260K-sharded   index + 2 shards, and decoys consolidated.safetensors and
#                                    pytorch_model.bin that must never be fetched
#   forge-test/gated                 gated: token "hf_reader" has access, "hf_other" has not
#   forge-test/private               private: only "hf_reader" sees it
#   forge-test/no-weights            config.json + pytorch_model.bin only
#   forge-test/renamed-old           an alias of forge-test/stories260K (relative 307s)
# Helpers: hub_requests [FILTER] (count of requests served, optionally only those whose
# "METHOD path" contains FILTER), hub_log (all requests as JSON), hub_reset (clears log and
# faults), hub_fault JSON (see Fault in hub_server.py), hub_wait MATCH [COUNT], hub_release.

HUB_DIR=$T_TMP/hub
HUB_PID=

hub_default_config() { # writes the default config to $HUB_DIR/config.json
  mkdir -p "$HUB_DIR/repos"
  local fx=$PWD/tests/fixtures/stories260K
  if [ ! -d "$HUB_DIR/repos/sharded" ]; then
    python3 tests/hub/make_sharded.py "$fx" "$HUB_DIR/repos/sharded" || return 1
    mkdir -p "$HUB_DIR/repos/noweights"
    cp "$fx/config.json" "$HUB_DIR/repos/noweights/"
    head -c 2048 "$fx/model.safetensors" >"$HUB_DIR/repos/noweights/pytorch_model.bin"
    mkdir -p "$HUB_DIR/repos/v1"
    cp "$fx"/*.json "$fx/model.safetensors" "$HUB_DIR/repos/v1/"
    rm -f "$HUB_DIR/repos/v1/expected-greedy.json"
    printf '{"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.7}\n' >"$HUB_DIR/repos/v1/generation_config.json"
  fi
  cat >"$HUB_DIR/config.json" <<JSON
{"repos": [
  {"id": "forge-test/stories260K", "revisions": {"main": "$fx", "v1": "$HUB_DIR/repos/v1"}},
  {"id": "forge-test/stories260K-sharded", "revisions": {"main": "$HUB_DIR/repos/sharded"}},
  {"id": "forge-test/gated", "gated": true, "revisions": {"main": "$fx"}},
  {"id": "forge-test/private", "private": true, "revisions": {"main": "$fx"}},
  {"id": "forge-test/no-weights", "revisions": {"main": "$HUB_DIR/repos/noweights"}}],
 "tokens": {"hf_reader": ["forge-test/gated", "forge-test/private"], "hf_other": []},
 "aliases": {"forge-test/renamed-old": "forge-test/stories260K"}}
JSON
}

hub_start() { # [CONFIG]: starts the server; sets HUB_URL, CDN_URL, HUB_LOG, HUB_PID
  mkdir -p "$HUB_DIR"
  local config=${1:-}
  if [ -z "$config" ]; then hub_default_config || return 1; config=$HUB_DIR/config.json; fi
  HUB_LOG=$HUB_DIR/requests.jsonl
  : >"$HUB_LOG"
  rm -f "$HUB_DIR/ready"
  mkfifo "$HUB_DIR/ready"
  python3 tests/hub/hub_server.py --config "$config" --log "$HUB_LOG" >"$HUB_DIR/ready" 2>"$HUB_DIR/server.err" &
  HUB_PID=$!
  local word hub_port cdn_port
  # Blocks until the server has bound its ports and says so (or exits: then read fails).
  if ! read -r -t 30 word hub_port cdn_port <"$HUB_DIR/ready" || [ "$word" != ready ]; then
    echo "hub_start: the stand-in Hub did not start:" >&2; cat "$HUB_DIR/server.err" >&2
    hub_stop; return 1
  fi
  HUB_URL=http://127.0.0.1:$hub_port
  CDN_URL=http://127.0.0.1:$cdn_port
  unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME
  export HF_ENDPOINT=$HUB_URL
  export HF_HOME=$T_TMP/hf-home
  export HF_HUB_CACHE=$T_TMP/cache
  export HF_TOKEN_PATH=$T_TMP/hf-home/no-token
  trap 'hub_stop; rm -rf "$T_TMP"' EXIT
}

hub_stop() {
  if [ -n "$HUB_PID" ]; then
    kill "$HUB_PID" 2>/dev/null
    wait "$HUB_PID" 2>/dev/null
    HUB_PID=
  fi
}

hub_admin() { # METHOD PATH [BODY]
  if [ $# -ge 3 ]; then curl -sS -X "$1" --data-binary "$3" "$HUB_URL$2"; else curl -sS -X "$1" "$HUB_URL$2"; fi
}
hub_log() { hub_admin GET /_admin/log; }
hub_reset() { hub_admin POST /_admin/reset >/dev/null; }
hub_fault() { hub_admin POST /_admin/faults "$1" >/dev/null; }
hub_release() { hub_admin POST /_admin/release >/dev/null; }
hub_wait() { # MATCH [COUNT]: waits until COUNT requests' "METHOD path" contain MATCH
  [ "$(curl -sS -o /dev/null -w '%{http_code}' "$HUB_URL/_admin/wait?match=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$1")&count=${2:-1}")" = 200 ]
}
hub_requests() { # [FILTER]
  hub_log | python3 -c 'import json,sys; f=sys.argv[1]; print(sum(1 for e in json.load(sys.stdin) if f in e["method"]+" "+e["path"]))' "${1:-}"
}
hub_commit() { # REPO [REV]
  hub_admin GET /_admin/commits | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$1" "${2:-main}"
}

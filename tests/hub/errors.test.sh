# Each error the Hub can answer, as the user sees it: a missing repo (401 without a token,
# 404 with one), a gated repo (ask for access at its page), a private repo, a missing
# revision, a missing file, a rejected token, a repo without safetensors, a bad id.
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
hub_start || exit 1

dl() { # expected exit status, then forge download arguments; stderr goes to $T_TMP/err
  local want=$1; shift
  "$FORGE" download "$@" >"$T_TMP/out" 2>"$T_TMP/err"
  local rc=$?
  [ "$rc" = "$want" ] || { echo "exit $rc, want $want"; cat "$T_TMP/err"; return 1; }
}
has() { grep -q -- "$1" "$T_TMP/err" || { echo "stderr lacks: $1"; cat "$T_TMP/err"; return 1; }; }

check "missing repo, no token: exit 1" dl 1 forge-test/nope
check "missing repo, no token: says not found, hints at HF_TOKEN" \
  has "forge download: model forge-test/nope not found on $HUB_URL (if it is private or gated, set HF_TOKEN)"
export HF_TOKEN=hf_other
check "missing repo, with a token: exit 1" dl 1 forge-test/nope
unset HF_TOKEN
check "missing repo, with a token: not found or no access" has "model forge-test/nope not found on $HUB_URL, or the token has no access to it"

check "gated, no token: exit 1" dl 1 forge-test/gated
check "gated, no token: names the page to ask for access" \
  has "forge-test/gated is a gated model: ask for access at $HUB_URL/forge-test/gated, then set HF_TOKEN"
check "gated, no token: the Hub's message is shown" has "Access to model forge-test/gated is restricted"
check "gated, token without access: exit 1" dl 1 --token hf_other forge-test/gated
check "gated, token without access: says so" has "gated model.*(the token sent has no access)"
check "gated, token with access: exit 0" dl 0 --token hf_reader forge-test/gated
check_eq "gated, token with access: the snapshot" "$(cat "$T_TMP/out")" \
  "$HF_HUB_CACHE/models--forge-test--gated/snapshots/$(hub_commit forge-test/gated)"

check "private, no token: exit 1 (not found)" dl 1 forge-test/private
check "private, no token: not found" has "model forge-test/private not found"
check "private, token with access: exit 0" dl 0 --token hf_reader forge-test/private

check "rejected token: exit 1" dl 1 --token hf_bogus forge-test/stories260K
check "rejected token: says the token was rejected" has "rejected the token .*invalid credentials"
check "--token '' sends none: public repo works" dl 0 --token "" forge-test/stories260K

check "missing revision: exit 1" dl 1 forge-test/stories260K@nope
check "missing revision: says so" has "revision 'nope' not found in forge-test/stories260K on $HUB_URL"
check "missing revision: no ref written" test ! -e "$HF_HUB_CACHE/models--forge-test--stories260K/refs/nope"

hub_reset
check "no safetensors: exit 1" dl 1 forge-test/no-weights
check "no safetensors: a clear error listing the files" \
  has "forge-test/no-weights@main has no safetensors weights in the transformers layout (model.safetensors, or model.safetensors.index.json and its shards); Forge reads no other format .*Files: config.json, pytorch_model.bin"
check_eq "no safetensors: nothing fetched (only the file list)" "$(hub_requests)" 1

# A file the list names but the Hub then says is missing (EntryNotFound on its HEAD).
rm -rf "$HF_HUB_CACHE"; hub_reset
hub_fault '[{"kind": "status", "status": 404, "method": "HEAD", "match": "/tokenizer.json",
             "headers": {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}}]'
check "missing entry: exit 1" dl 1 forge-test/stories260K
check "missing entry: names the file" has "tokenizer.json not found in forge-test/stories260K at revision main (the Hub says: Entry not found)"

check "bad id: exit 1" dl 1 not-an-id
check "bad id: says what an id is" has "'not-an-id' is not a Hub model id: expected org/name"
check "no id: usage, exit 2" dl 2
check "--help: exit 0" dl 0 --help
check "--help: documents the options" has "--offline"
finish

# Failures injected by the stand-in Hub: a connection cut mid-file (resumed with Range in the
# same run, and across runs from the .incomplete file), corrupted bytes (detected by the
# digest, downloaded again), 429 / 503 with Retry-After (honoured), a stalled transfer (read
# timeout), and the token: sent to the Hub, never to the CDN.
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
hub_start || exit 1
FX=tests/fixtures/stories260K
M=$HF_HUB_CACHE/models--forge-test--stories260K
C=$(hub_commit forge-test/stories260K)
S=$(sha256sum "$FX/model.safetensors" | cut -d' ' -f1)
fresh() { rm -rf "$HF_HUB_CACHE"; hub_reset; }
ranges() { # the Range headers of the CDN GETs of the model, in order
  hub_log | python3 -c 'import json,sys; print(" ".join(str(e["range"]) for e in json.load(sys.stdin) if e["server"]=="cdn"))'
}
model_ok() { cmp "$M/snapshots/$C/model.safetensors" "$FX/model.safetensors"; }

# ---- a cut mid-file: resumed at once with a Range request
fresh
hub_fault '[{"kind": "cut", "server": "cdn", "match": "/lfs/", "at": 300000}]'
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "cut: exit 0" "$rc" 0
check_eq "cut: the second GET asks for the rest" "$(ranges)" "None bytes=300000-"
check "cut: the file is intact" model_ok
check "cut: a warning says so" grep -q "model.safetensors: .*resuming at byte 300000" "$T_TMP/err"

# ---- a cut with no retries left: the next run resumes from the .incomplete file
fresh
hub_fault '[{"kind": "cut", "server": "cdn", "match": "/lfs/", "at": 400000}]'
FORGE_HUB_RETRIES=0 "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "cut, no retries: exit 1" "$rc" 1
check "cut, no retries: the error names the file" grep -q "downloading model.safetensors of forge-test/stories260K failed" "$T_TMP/err"
check_eq "cut, no retries: .incomplete keeps the 400000 bytes" "$(stat -c %s "$M/blobs/$S.incomplete")" 400000
check "cut, no retries: no link to an incomplete blob" test ! -e "$M/snapshots/$C/model.safetensors"
check "cut, no retries: no ref yet (written last)" test ! -e "$M/refs/main"
hub_reset
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "resume: exit 0" "$rc" 0
check_eq "resume: one GET from byte 400000" "$(ranges)" "bytes=400000-"
check "resume: announced" grep -q "^forge: resuming model.safetensors at 400 kB of 1.04 MB$" "$T_TMP/err"
check "resume: the file is intact" model_ok
check "resume: no .incomplete left" test ! -e "$M/blobs/$S.incomplete"
check_eq "resume: refs/main written" "$(cat "$M/refs/main")" "$C"

# ---- a resume the server answers with the whole file (Range ignored): starts over cleanly
fresh
head -c 1000 /dev/zero >"$T_TMP/junk"; mkdir -p "$M/blobs"; cp "$T_TMP/junk" "$M/blobs/$S.incomplete"
"$FORGE" download forge-test/stories260K >/dev/null 2>"$T_TMP/err"; rc=$?
check_eq "bad partial file: exit 0 (digest mismatch, downloaded again)" "$rc" 0
check "bad partial file: the file is intact" model_ok
check "bad partial file: the mismatch is reported" grep -q "model.safetensors: sha256 mismatch" "$T_TMP/err"

# ---- corrupted bytes once: detected by the digest and downloaded again
fresh
hub_fault '[{"kind": "corrupt", "server": "cdn", "match": "/lfs/", "at": 123456},
            {"kind": "corrupt", "server": "hub", "method": "GET", "match": "/tokenizer.json", "at": 100}]'
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "corrupt once: exit 0" "$rc" 0
check "corrupt once: sha256 mismatch reported" grep -q "model.safetensors: sha256 mismatch (got [0-9a-f]*, expected $S); downloading it again" "$T_TMP/err"
check "corrupt once: git blob sha1 mismatch reported for a small file" grep -q "tokenizer.json: git blob sha1 mismatch" "$T_TMP/err"
check_eq "corrupt once: the model fetched twice, whole both times" "$(ranges)" "None None"
check "corrupt once: the file is intact" model_ok
check "corrupt once: tokenizer.json intact" cmp "$M/snapshots/$C/tokenizer.json" "$FX/tokenizer.json"

# ---- corrupted every time: an error, and nothing half-made left
fresh
hub_fault '[{"kind": "corrupt", "server": "cdn", "match": "/lfs/", "times": 10}]'
FORGE_HUB_RETRIES=2 "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "always corrupt: exit 1" "$rc" 1
check "always corrupt: a clear error" grep -q "downloaded model.safetensors of forge-test/stories260K but its sha256 is [0-9a-f]*, not $S (tried 3 times)" "$T_TMP/err"
check "always corrupt: no blob" test ! -e "$M/blobs/$S"
check "always corrupt: no .incomplete" test ! -e "$M/blobs/$S.incomplete"
check "always corrupt: no link" test ! -e "$M/snapshots/$C/model.safetensors"

# ---- 503 with Retry-After on the file list (nothing cached): waits as told, then succeeds
fresh
hub_fault '[{"kind": "status", "status": 503, "retry_after": 1, "match": "/api/models/"}]'
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "503 + Retry-After: exit 0" "$rc" 0
gap=$(hub_log | python3 -c 'import json,sys; t=[e["t"] for e in json.load(sys.stdin) if "/api/models/" in e["path"]]; print(len(t), "%.1f" % (t[1]-t[0]) if len(t) == 2 else "")')
check "503 + Retry-After: asked twice, at least 1 s apart (got: $gap)" python3 -c "import sys; n,g='$gap'.split(); sys.exit(not (n=='2' and float(g)>=0.9))"
check "503 + Retry-After: the wait is reported" grep -q "HTTP 503; retrying in 1 s" "$T_TMP/err"

# ---- 429 then 503 on the CDN, 500 on a HEAD: all retried
fresh
hub_fault '[{"kind": "status", "status": 429, "retry_after": 0, "server": "cdn", "match": "/lfs/"},
            {"kind": "status", "status": 503, "retry_after": 0, "server": "cdn", "match": "/lfs/"},
            {"kind": "status", "status": 500, "retry_after": 0, "method": "HEAD", "match": "/config.json"}]'
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "429/5xx: exit 0" "$rc" 0
check_eq "429/5xx: the CDN asked three times" "$(hub_requests "GET /lfs/")" 3
check_eq "429/5xx: the HEAD asked twice" "$(hub_requests "HEAD /forge-test/stories260K/resolve/$C/config.json")" 2
check "429/5xx: the file is intact" model_ok

# ---- the Hub down while the model is cached: the cache at once, with a warning
hub_reset
hub_fault '[{"kind": "status", "status": 502, "match": "/api/models/"}]'
out=$("$FORGE" download forge-test/stories260K 2>"$T_TMP/err"); rc=$?
check_eq "502, cached: exit 0" "$rc" 0
check_eq "502, cached: the cached path" "$out" "$M/snapshots/$C"
check_eq "502, cached: no retry (one request)" "$(hub_requests)" 1
check "502, cached: a warning" grep -q "warning: cannot reach $HUB_URL (HTTP 502); using the cached snapshot" "$T_TMP/err"

# ---- always 503: gives up after the retries, with the reason
fresh
hub_fault '[{"kind": "status", "status": 503, "retry_after": 0, "match": "/api/models/", "times": 10}]'
FORGE_HUB_RETRIES=2 "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "always 503: exit 1" "$rc" 1
check_eq "always 503: 1 + 2 tries" "$(hub_requests)" 3
check "always 503: says so" grep -q "the server answered HTTP 503 for the file list of forge-test/stories260K" "$T_TMP/err"

# ---- a stalled transfer: the read timeout fires and the download resumes
fresh
hub_fault '[{"kind": "stall", "server": "cdn", "match": "/lfs/", "at": 200000}]'
HF_HUB_DOWNLOAD_TIMEOUT=1 "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "stall: exit 0" "$rc" 0
check_eq "stall: resumed from where it stopped" "$(ranges)" "None bytes=200000-"
check "stall: the timeout is reported" grep -q "model.safetensors: timed out: no data for 1 s; resuming at byte 200000" "$T_TMP/err"
check "stall: the file is intact" model_ok

# ---- the disk fills mid-file: writes past a file size limit fail (EFBIG, the path ENOSPC
# takes); the cache keeps what it has, links nothing incomplete, and the next run resumes
fresh
(trap '' XFSZ; ulimit -f 300; "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"); rc=$?
check_eq "disk full: exit 1" "$rc" 1
check "disk full: the error names the failed write" grep -q "write failed" "$T_TMP/err"
check "disk full: no link to an incomplete blob" test ! -e "$M/snapshots/$C/model.safetensors"
check "disk full: no finished blob" test ! -e "$M/blobs/$S"
check "disk full: no ref yet" test ! -e "$M/refs/main"
kept=$(stat -c %s "$M/blobs/$S.incomplete" 2>/dev/null || echo 0)
check "disk full: the .incomplete file keeps what was written (at most 300 KB)" test "$kept" -le 307200
hub_reset
"$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "disk full, then room: exit 0" "$rc" 0
check "disk full, then room: the file is intact" model_ok
check_eq "disk full, then room: refs/main written" "$(cat "$M/refs/main")" "$C"

# ---- the token: to the Hub, never to the CDN (which would reject it)
fresh
HF_TOKEN=hf_reader "$FORGE" download forge-test/stories260K >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "token: exit 0" "$rc" 0
auth=$(hub_log | python3 -c '
import json,sys
log = json.load(sys.stdin)
print(sorted(set(e["auth"] for e in log if e["server"] == "hub")), sorted(set(str(e["auth"]) for e in log if e["server"] == "cdn")))')
check_eq "token: Bearer on every Hub request, none on the CDN" "$auth" "['Bearer hf_reader'] ['None']"
check "token: the file is intact" model_ok
fresh
echo "hf_reader" >"$T_TMP/tokfile"
HF_TOKEN_PATH=$T_TMP/tokfile "$FORGE" download forge-test/gated >/dev/null 2>&1; rc=$?
check_eq "token from HF_TOKEN_PATH opens the gated repo" "$rc" 0
finish

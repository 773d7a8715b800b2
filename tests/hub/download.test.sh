# forge download against the stand-in Hub: the cache layout file by file, only the files
# inference needs (shards named by the index, never the decoys), one request when cached,
# none offline or for a complete commit, revisions sharing blobs, the unreachable-Hub
# fallback, and the progress output (lines on a pipe, a bar on a terminal).
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
hub_start || exit 1
FX=tests/fixtures/stories260K
M=$HF_HUB_CACHE/models--forge-test--stories260K
C=$(hub_commit forge-test/stories260K)
sha256() { sha256sum "$1" | cut -d' ' -f1; }
gitsha() { python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$1"; }

# ---- first download: the layout, file by file
out=$("$FORGE" download forge-test/stories260K 2>"$T_TMP/err"); rc=$?
check_eq "download exits 0" "$rc" 0
check_eq "stdout is the snapshot path" "$out" "$M/snapshots/$C"
check_eq "refs/main holds the commit, no newline" "$(cat "$M/refs/main"; echo .)" "$C."
check_eq "snapshot holds exactly the files inference needs" \
  "$(cd "$M/snapshots/$C" && ls | tr '\n' ' ')" \
  "config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json "
for f in config.json generation_config.json tokenizer.json tokenizer_config.json; do
  e=$(gitsha "$FX/$f")
  check_eq "$f -> ../../blobs/<git blob sha1>" "$(readlink "$M/snapshots/$C/$f")" "../../blobs/$e"
  check "$f blob equals the original" cmp "$M/blobs/$e" "$FX/$f"
done
S=$(sha256 "$FX/model.safetensors")
check_eq "model.safetensors -> ../../blobs/<sha256> (X-Linked-Etag, not the CDN's ETag)" \
  "$(readlink "$M/snapshots/$C/model.safetensors")" "../../blobs/$S"
check "model.safetensors blob equals the original" cmp "$M/blobs/$S" "$FX/model.safetensors"
check_eq "blobs: one per file, nothing partial left" "$(ls "$M/blobs" | wc -l)" 5
check_eq ".no_exist marks the optional files the revision lacks" \
  "$(cd "$M/.no_exist/$C" && ls | tr '\n' ' ')" "chat_template.jinja special_tokens_map.json "
check_eq "lock files, one per downloaded blob" "$(ls "$HF_HUB_CACHE/.locks/models--forge-test--stories260K" | sort | tr '\n' ' ')" \
  "$(cd "$M/blobs" && ls | sed 's/$/.lock/' | sort | tr '\n' ' ')"
check "CACHEDIR.TAG as huggingface_hub writes it" grep -q '^Signature: 8a477f597d28d172789f06886806bc55$' "$HF_HUB_CACHE/CACHEDIR.TAG"
check_eq "blob mode is a new file's (0666 less umask)" "$(stat -c %a "$M/blobs/$S")" "$(printf '%o' $((0666 & ~$(umask))))"
check_eq "requests: 1 file list + 5 HEADs + 5 GETs" "$(hub_requests)" 11
check_eq "the file list asked with blobs=true" "$(hub_requests 'GET /api/models/forge-test/stories260K/revision/main?blobs=true')" 1
check_eq "HEADs by commit hash" "$(hub_requests "HEAD /forge-test/stories260K/resolve/$C/")" 5
check_eq "the LFS file came from the CDN" "$(hub_requests "GET /lfs/$S")" 1
check_eq "expected-greedy.json (not needed) was not fetched" "$(hub_requests expected-greedy)" 0
check "quiet lines on a pipe" grep -q '^forge: downloading forge-test/stories260K@main: 5 files, 1.07 MB$' "$T_TMP/err"
check "a line per file" grep -q '^forge:   model.safetensors (1.04 MB)$' "$T_TMP/err"
check "a summary line" grep -q '^forge: downloaded 1.07 MB in ' "$T_TMP/err"

# ---- cached: one request re-resolves the revision
hub_reset
out=$("$FORGE" download forge-test/stories260K 2>"$T_TMP/err")
check_eq "cached: same path" "$out" "$M/snapshots/$C"
check_eq "cached: exactly one request (the file list)" "$(hub_requests)" 1
check_eq "cached: nothing printed" "$(cat "$T_TMP/err")" ""

# ---- offline: no request at all
hub_reset
out=$(HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K 2>"$T_TMP/err")
check_eq "HF_HUB_OFFLINE=1: the cached path" "$out" "$M/snapshots/$C"
out=$("$FORGE" download --offline forge-test/stories260K@main 2>>"$T_TMP/err")
check_eq "--offline: the cached path" "$out" "$M/snapshots/$C"
out=$("$FORGE" download "forge-test/stories260K@$C" 2>>"$T_TMP/err")
check_eq "a complete commit online: the cached path" "$out" "$M/snapshots/$C"
check_eq "offline and by complete commit: zero requests" "$(hub_requests)" 0
HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K-sharded >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
check_eq "offline, not cached: exit 1" "$rc" 1
check "offline, not cached: a clear error" grep -q "HF_HUB_OFFLINE.*not usable from the cache at $HF_HUB_CACHE.*not in the cache" "$T_TMP/err"
check_eq "offline, not cached: zero requests" "$(hub_requests)" 0

# ---- sharded: the index and exactly its shards, never the decoys
hub_reset
MS=$HF_HUB_CACHE/models--forge-test--stories260K-sharded
CS=$(hub_commit forge-test/stories260K-sharded)
out=$("$FORGE" download forge-test/stories260K-sharded 2>"$T_TMP/err"); rc=$?
check_eq "sharded: exit 0" "$rc" 0
check_eq "sharded: path" "$out" "$MS/snapshots/$CS"
check_eq "sharded: index + 2 shards + small files" "$(cd "$MS/snapshots/$CS" && ls | tr '\n' ' ')" \
  "config.json generation_config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json tokenizer.json tokenizer_config.json "
check_eq "sharded: consolidated.safetensors never asked for" "$(hub_requests consolidated)" 0
check_eq "sharded: pytorch_model.bin never asked for" "$(hub_requests pytorch_model)" 0
for s in model-00001-of-00002 model-00002-of-00002; do
  check "sharded: $s.safetensors intact" cmp "$MS/snapshots/$CS/$s.safetensors" "$HUB_DIR/repos/sharded/$s.safetensors"
done
check "sharded: the shards are announced" grep -q '^forge: 2 more files (weight shards), 1.05 MB$' "$T_TMP/err"
hub_reset
rm "$MS/snapshots/$CS/model-00002-of-00002.safetensors"
HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K-sharded >/dev/null 2>"$T_TMP/err"; rc=$?
check_eq "offline with a shard missing: exit 1" "$rc" 1
check "offline with a shard missing: names it" grep -q "shard model-00002-of-00002.safetensors is missing" "$T_TMP/err"
"$FORGE" download forge-test/stories260K-sharded >/dev/null 2>&1
check_eq "online again: only the missing shard's HEAD (blob already there) and no GET" \
  "$(hub_requests HEAD) $(hub_requests GET)" "1 1"
check "online again: the link is back" test -f "$MS/snapshots/$CS/model-00002-of-00002.safetensors"

# ---- another revision: its own ref and snapshot, blobs shared
hub_reset
C1=$(hub_commit forge-test/stories260K v1)
out=$("$FORGE" download forge-test/stories260K@v1 2>/dev/null)
check_eq "@v1: its snapshot" "$out" "$M/snapshots/$C1"
check_eq "@v1: refs/v1" "$(cat "$M/refs/v1")" "$C1"
check_eq "@v1: refs/main unchanged" "$(cat "$M/refs/main")" "$C"
check_eq "@v1: only the changed file is fetched (blobs shared)" "$(hub_requests GET)" 2
check_eq "@v1: same model blob" "$(readlink "$M/snapshots/$C1/model.safetensors")" "../../blobs/$S"

# ---- a renamed repo: the Hub's relative redirects are followed
hub_reset
out=$("$FORGE" download forge-test/renamed-old 2>/dev/null); rc=$?
check_eq "renamed repo: exit 0" "$rc" 0
check_eq "renamed repo: cached under the name asked for" "$out" "$HF_HUB_CACHE/models--forge-test--renamed-old/snapshots/$C"

# ---- the Hub unreachable: the cache with a warning; or a clear error
out=$(HF_ENDPOINT=http://127.0.0.1:1 "$FORGE" download forge-test/stories260K 2>"$T_TMP/err"); rc=$?
check_eq "unreachable, cached: exit 0" "$rc" 0
check_eq "unreachable, cached: the cached path" "$out" "$M/snapshots/$C"
check "unreachable, cached: a warning" grep -q "warning: cannot reach http://127.0.0.1:1 .*using the cached snapshot of forge-test/stories260K@main" "$T_TMP/err"
HF_ENDPOINT=http://127.0.0.1:1 "$FORGE" download forge-test/other >/dev/null 2>"$T_TMP/err"; rc=$?
check_eq "unreachable, not cached: exit 1" "$rc" 1
check "unreachable, not cached: a clear error" grep -q "cannot reach http://127.0.0.1:1 for the file list of forge-test/other (.*), and forge-test/other@main is not in the cache at $HF_HUB_CACHE$" "$T_TMP/err"

# ---- a progress bar on a terminal
if command -v script >/dev/null; then
  HF_HUB_CACHE=$T_TMP/cache-tty script -qec "$FORGE download forge-test/stories260K" /dev/null </dev/null >"$T_TMP/tty" 2>&1
  check "terminal: a bar with bytes and rate" grep -qa '100% \[#\+\]  *1.07 MB / 1.07 MB  *[0-9.]* [kMG]*B/s  ETA  *0:00' "$T_TMP/tty"
  check "terminal: redrawn in place" grep -qa $'\r' "$T_TMP/tty"
  check "terminal: no per-file lines" bash -c "! grep -qa 'forge:   model.safetensors' '$T_TMP/tty'"
fi
finish

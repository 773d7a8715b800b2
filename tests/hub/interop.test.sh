# Interop with huggingface_hub's cache, both ways. tests/hub/hf_cache_ref.py does what
# huggingface_hub's hf_hub_download does to the cache, one call per file as transformers loads
# a model; Forge's cache of the same models must have exactly the same shape (paths, symlink
# targets, refs, .no_exist, locks, blob bytes and modes), Forge must use a cache built that
# way without a request, and the reference must find Forge's files offline. Last, the
# lock: while "Python" holds a blob's lock, Forge waits and then uses the blob it wrote.
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
hub_start || exit 1
PYC=$T_TMP/py-cache
FC=$T_TMP/forge-cache
SMALL="config.json generation_config.json tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja"
SHARDS=$(python3 -c 'import json,sys; print(" ".join(sorted(set(json.load(open(sys.argv[1]))["weight_map"].values()))))' \
  "$HUB_DIR/repos/sharded/model.safetensors.index.json")
ref() { python3 tests/hub/hf_cache_ref.py --endpoint "$HUB_URL" "$@"; }

# The reference builds its cache: three models / revisions, the files transformers asks for.
ref --cache "$PYC" forge-test/stories260K main $SMALL model.safetensors >"$T_TMP/py1" &&
ref --cache "$PYC" forge-test/stories260K v1 $SMALL model.safetensors >>"$T_TMP/py1" &&
ref --cache "$PYC" forge-test/stories260K-sharded main config.json model.safetensors \
  model.safetensors.index.json $SHARDS $SMALL >>"$T_TMP/py1"
check_eq "reference cache built" "$?" 0
check "reference recorded the missing files" grep -q "^MISSING chat_template.jinja$" "$T_TMP/py1"

# Forge builds its cache of the same.
for m in forge-test/stories260K forge-test/stories260K@v1 forge-test/stories260K-sharded; do
  HF_HUB_CACHE=$FC "$FORGE" download --quiet "$m" >/dev/null 2>"$T_TMP/err" || cat "$T_TMP/err"
done
python3 tests/hub/tree_digest.py "$PYC" >"$T_TMP/py-tree"
python3 tests/hub/tree_digest.py "$FC" >"$T_TMP/forge-tree"
check "the two caches have exactly the same shape" diff "$T_TMP/py-tree" "$T_TMP/forge-tree"
check_eq "the shape covers blobs, snapshots, refs, .no_exist, locks, CACHEDIR.TAG" \
  "$(cut -d' ' -f1 "$T_TMP/forge-tree" | sed 's|^models--forge-test--stories260K[^/]*/||; s|/.*||' | sort -u | tr '\n' ' ')" \
  ".locks .no_exist CACHEDIR.TAG blobs models--forge-test--stories260K models--forge-test--stories260K-sharded refs snapshots "

# Forge reads the reference's cache: offline with no request, online with one.
hub_reset
C=$(hub_commit forge-test/stories260K)
out=$(HF_HUB_CACHE=$PYC HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K 2>/dev/null)
check_eq "Forge offline on a huggingface_hub cache: its snapshot" "$out" "$PYC/models--forge-test--stories260K/snapshots/$C"
out=$(HF_HUB_CACHE=$PYC HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K-sharded 2>/dev/null)
check_eq "Forge offline on a huggingface_hub cache (sharded): its snapshot" "$out" \
  "$PYC/models--forge-test--stories260K-sharded/snapshots/$(hub_commit forge-test/stories260K-sharded)"
check_eq "Forge offline on a huggingface_hub cache: zero requests" "$(hub_requests)" 0
out=$(HF_HUB_CACHE=$PYC "$FORGE" download forge-test/stories260K@v1 2>/dev/null)
check_eq "Forge online on a huggingface_hub cache: its snapshot" "$out" \
  "$PYC/models--forge-test--stories260K/snapshots/$(hub_commit forge-test/stories260K v1)"
check_eq "Forge online on a huggingface_hub cache: one request" "$(hub_requests)" 1
python3 tests/hub/tree_digest.py "$PYC" >"$T_TMP/py-tree2"
check "Forge changed nothing in it" diff "$T_TMP/py-tree" "$T_TMP/py-tree2"

# The reference reads Forge's cache offline (local_files_only), file by file.
hub_reset
ref --cache "$FC" --offline forge-test/stories260K main $SMALL model.safetensors >"$T_TMP/py2"; rc=$?
check_eq "reference offline on Forge's cache: found everything" "$rc" 0
check_eq "reference offline on Forge's cache: the same pointers" \
  "$(grep -c "^$FC/models--forge-test--stories260K/snapshots/$C/" "$T_TMP/py2") $(grep -c '^MISSING' "$T_TMP/py2")" "5 2"
check_eq "reference offline on Forge's cache: zero requests" "$(hub_requests)" 0

# The lock: "Python" holds the model blob's lock; Forge waits, then links the blob it wrote.
hub_reset
LC=$T_TMP/lock-cache
S=$(sha256sum tests/fixtures/stories260K/model.safetensors | cut -d' ' -f1)
LOCK=$LC/.locks/models--forge-test--stories260K/$S.lock
BLOB=$LC/models--forge-test--stories260K/blobs/$S
mkfifo "$T_TMP/py-in" "$T_TMP/py-out" "$T_TMP/forge-err"
cat >"$T_TMP/hold.py" <<'PY'
import fcntl, os, shutil, sys
lock, blob, src = sys.argv[1:4]
os.makedirs(os.path.dirname(lock), exist_ok=True)
fd = os.open(lock, os.O_RDWR | os.O_TRUNC | os.O_CREAT, 0o644)   # as filelock
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()                                               # until told to finish
os.makedirs(os.path.dirname(blob), exist_ok=True)
shutil.copyfile(src, blob + ".tmp"); os.replace(blob + ".tmp", blob)
fcntl.flock(fd, fcntl.LOCK_UN)
print("released", flush=True)
PY
python3 "$T_TMP/hold.py" "$LOCK" "$BLOB" tests/fixtures/stories260K/model.safetensors <"$T_TMP/py-in" >"$T_TMP/py-out" &
PY_PID=$!
exec 7>"$T_TMP/py-in" 8<"$T_TMP/py-out"
read -r -t 20 line <&8
check_eq "python holds the lock" "$line" locked
HF_HUB_CACHE=$LC "$FORGE" download forge-test/stories260K >"$T_TMP/lock-out" 2>"$T_TMP/forge-err" &
F_PID=$!
exec 9<"$T_TMP/forge-err"
waited=no
while read -r -t 20 line <&9; do
  echo "$line" >>"$T_TMP/lock-err"
  case "$line" in *"waiting for another process downloading model.safetensors"*) waited=yes; break;; esac
done
check_eq "Forge waits for the lock" "$waited" yes
echo go >&7
read -r -t 20 line <&8
check_eq "python wrote the blob and released" "$line" released
cat <&9 >>"$T_TMP/lock-err"
wait "$F_PID"; rc=$?
wait "$PY_PID"
exec 7>&- 8<&- 9<&-
check_eq "Forge then succeeds" "$rc" 0
check_eq "Forge did not download the blob itself" "$(hub_requests "GET /lfs/")" 0
check "Forge linked the blob Python wrote" cmp "$LC/models--forge-test--stories260K/snapshots/$C/model.safetensors" tests/fixtures/stories260K/model.safetensors
finish

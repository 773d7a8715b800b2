# Two Forge processes downloading one model at once: the second waits on the blob's lock while
# the first is mid-file (held there by the stand-in CDN), then uses the first one's blob; the
# model crosses the network once and both get the same snapshot. And one process fetches the
# shards of a sharded model in parallel.
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
hub_start || exit 1
S=$(sha256sum tests/fixtures/stories260K/model.safetensors | cut -d' ' -f1)
C=$(hub_commit forge-test/stories260K)
M=$HF_HUB_CACHE/models--forge-test--stories260K

hub_fault '[{"kind": "hold", "server": "cdn", "match": "/lfs/", "at": 500000}]'
"$FORGE" download forge-test/stories260K >"$T_TMP/a.out" 2>"$T_TMP/a.err" &
A=$!
check "A is mid-file on the CDN" hub_wait "GET /lfs/$S"
mkfifo "$T_TMP/b.fifo"
"$FORGE" download forge-test/stories260K >"$T_TMP/b.out" 2>"$T_TMP/b.fifo" &
B=$!
exec 7<"$T_TMP/b.fifo"
waited=no
while read -r -t 20 line <&7; do
  echo "$line" >>"$T_TMP/b.err"
  case "$line" in *"waiting for another process downloading model.safetensors"*) waited=yes; break;; esac
done
check_eq "B waits on the lock A holds" "$waited" yes
hub_release
cat <&7 >>"$T_TMP/b.err"
exec 7<&-
wait "$A"; ra=$?
wait "$B"; rb=$?
check_eq "A succeeds" "$ra" 0
check_eq "B succeeds" "$rb" 0
check_eq "A prints the snapshot" "$(cat "$T_TMP/a.out")" "$M/snapshots/$C"
check_eq "B prints the same" "$(cat "$T_TMP/b.out")" "$M/snapshots/$C"
check_eq "the model crossed the network once" "$(hub_requests "GET /lfs/")" 1
check "B used A's blob" grep -q "model.safetensors (1.04 MB) already in the cache" "$T_TMP/b.err"
check "the blob is intact" cmp "$M/blobs/$S" tests/fixtures/stories260K/model.safetensors
check_eq "no partial file left" "$(ls "$M/blobs" | grep -c incomplete)" 0

# Both shards are held mid-file by the CDN: they can only both be in flight if fetched at once.
hub_reset
hub_fault '[{"kind": "hold", "server": "cdn", "match": "/lfs/", "at": 1000, "times": 2}]'
HF_HUB_DOWNLOAD_TIMEOUT=60 "$FORGE" download forge-test/stories260K-sharded >"$T_TMP/s.out" 2>"$T_TMP/s.err" &
P=$!
S1=$(sha256sum "$HUB_DIR/repos/sharded/model-00001-of-00002.safetensors" | cut -d' ' -f1)
S2=$(sha256sum "$HUB_DIR/repos/sharded/model-00002-of-00002.safetensors" | cut -d' ' -f1)
check "the two shards are in flight together" eval 'hub_wait "GET /lfs/$S1" && hub_wait "GET /lfs/$S2"'
hub_release
wait "$P"; rc=$?
check_eq "sharded, parallel: exit 0" "$rc" 0
check_eq "sharded, parallel: one GET per shard" "$(hub_requests "GET /lfs/")" 2
finish

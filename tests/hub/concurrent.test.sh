# Two Forge processes downloading one model at once: the second waits on the blob's lock while
# the first is mid-file (held there by the stand-in CDN), then uses the first one's blob; the
# model crosses the network once and both get the same snapshot.
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
finish

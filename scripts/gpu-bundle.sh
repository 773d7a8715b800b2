#!/usr/bin/env bash
# Builds everything scripts/gpu-check.sh runs, here (the GPU machine has the NVIDIA driver
# and the CUDA runtime but none of Debian's -dev libraries and no package access), into one
# folder that travels with the working tree (git ignores it; a device run names it in
# `carry`):
#   gpu-bundle/bin/   cuda_ops cuda_model cuda_bench make_model
#   gpu-bundle/lib/   libforge-cuda.so, and the Debian shared libraries the programs need
#                     (ldd), except glibc, libstdc++/libgcc and CUDA's own libraries, which
#                     the GPU machine has
#   gpu-bundle/emu/   the CPU emulator's libforge-cuda.so (for gpu-check.sh --dry-run)
#   gpu-bundle/MANIFEST  commit, compiler versions, files and sizes
# Usage: bash scripts/gpu-bundle.sh [OUT_DIR]   (CUDA_ARCH=sm_90 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-bundle}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "gpu-bundle: no nvcc (looked for $NVCC)"; exit 1; }

make -j2 all >/dev/null
make -j2 CUDA=1 cuda cuda-emu NVCC="$NVCC" >/dev/null
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib" "$OUT/emu"
cp build/cuda/cuda_ops build/cuda/cuda_model build/cuda/cuda_bench build/cuda/make_model "$OUT/bin/"
cp build/libforge-cuda.so "$OUT/lib/"
cp build/emu/libforge-cuda.so "$OUT/emu/"

# shared libraries to carry: what ldd resolves, minus what every Linux with a GPU driver has
skip='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt|libcudart|libnvidia)[.-]'
for f in "$OUT"/bin/* "$OUT/lib/libforge-cuda.so"; do
  ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    if ! [[ $name =~ $skip ]] && [ ! -e "$OUT/lib/$name" ]; then cp -L "$path" "$OUT/lib/$name"; fi
  done
done

{
  echo "commit    $(git rev-parse HEAD)$([ -z "$(git status --porcelain -- src tests scripts Makefile include)" ] || echo " (with uncommitted changes)")"
  echo "built     $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
  echo "cc        $(${CC:-cc} --version | head -1)"
  echo "nvcc      $("$NVCC" --version | tail -1)"
  echo "arch      ${CUDA_ARCH:-sm_90}"
  echo "files:"
  (cd "$OUT" && find . -type f ! -name MANIFEST | sort | while read -r f; do
     printf '  %-32s %10s  %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -c1-16)"; done)
} >"$OUT/MANIFEST"
cat "$OUT/MANIFEST"
echo "gpu-bundle: $(du -sh "$OUT" | cut -f1) in $OUT (the working tree and carried paths must stay under 64 MiB together)"

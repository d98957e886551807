#!/usr/bin/env bash
# An emulated Arm board's Python: Debian 12's aarch64 Python 3.11 unpacked into a folder (no chroot, no
# binfmt registration needed) and run by qemu-user, with numpy's, ONNX Runtime's, ncnn's and pycocotools' aarch64
# wheels beside it. The board tests marked `emulated` run the bundle's script with it, so the script and the
# runtime's Arm kernels really run on the Arm instruction set. Needs root (apt) and the package index.
#
#   bash tests/boards/arm64_root.sh [ROOT]     # default /var/cache/edge-compress/arm64; done once, then reused
#
# ONNX Runtime's Arm build reads the CPU from /proc/cpuinfo (pytorch/cpuinfo) at import. qemu-user 7.2
# (Debian 12) passes the host's x86 /proc/cpuinfo through, which names no Arm core, and onnxruntime
# 1.32's init then dereferences NULL (SIGSEGV at import; 1.20.1 happened to survive it). qemu-user
# looks up an absolute path under its -L root first, so the root carries an Arm /proc/cpuinfo (a
# Raspberry Pi 4's Cortex-A72, two cores) and the host's own onnxruntime version runs on the board.
set -euo pipefail
ROOT="${1:-${EDGE_COMPRESS_ARM64_ROOT:-/var/cache/edge-compress/arm64}}"
ORT_ARM="${ORT_ARM:-1.32.0}"  # the host's (pyproject's): the board runs the same runtime
PY="$(realpath "$(command -v "${PYTHON:-python3}")")"  # its pip downloads the aarch64 wheels; absolute: we change folders
NUMPY_ARM="${NUMPY_ARM:-2.2.6}"
NCNN_ARM="${NCNN_ARM:-1.0.20261020}"  # the host's (pyproject's ncnn extra): the same converter output runs on both
COCO_ARM="${COCO_ARM:-2.0.11}"  # pycocotools: a detector's mAP on the board, computed as the host computes it
if [ -x "$ROOT/python" ] && "$ROOT/python" -c "import numpy, onnxruntime, ncnn, pycocotools; assert onnxruntime.__version__ == '$ORT_ARM'" >/dev/null 2>&1; then
  echo "$ROOT/python: ready"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq qemu-user-static >/dev/null
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
fi
apt-get update -qq
mkdir -p "$ROOT/debs" "$ROOT/sysroot" "$ROOT/site"
cd "$ROOT/debs"
# Python and every library it loads, resolved by apt for arm64 (only arm64 packages: the sysroot's)
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
  python3.11-minimal:arm64 libpython3.11-stdlib:arm64 libstdc++6:arm64 libgomp1:arm64 2>/dev/null \
  | grep -E '^[a-z0-9]' | grep ':arm64$' | sort -u)
apt-get download -o APT::Sandbox::User=root $packages >/dev/null
for deb in ./*.deb; do dpkg -x "$deb" "$ROOT/sysroot"; done
mkdir -p "$ROOT/sysroot/proc"  # what the emulated board's programs read as /proc/cpuinfo (see above)
for cpu in 0 1; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$cpu"
done > "$ROOT/sysroot/proc/cpuinfo"
printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B (emulated by qemu-user)\n' >> "$ROOT/sysroot/proc/cpuinfo"
AARCH64=(--only-binary :all: --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64
         --python-version 3.11 --implementation cp --abi cp311 --no-deps)
"$PY" -m pip download --quiet "${AARCH64[@]}" -d "$ROOT/wheels" "numpy==$NUMPY_ARM" "onnxruntime==$ORT_ARM" "ncnn==$NCNN_ARM" "pycocotools==$COCO_ARM"
rm -rf "$ROOT/site"  # only the pinned versions, whatever an earlier root held
"$PY" -m pip install --quiet "${AARCH64[@]}" --target "$ROOT/site" "$ROOT/wheels/numpy-$NUMPY_ARM"-*.whl "$ROOT/wheels/onnxruntime-$ORT_ARM"-*.whl "$ROOT/wheels/ncnn-$NCNN_ARM"-*.whl \
  "$ROOT/wheels/pycocotools-$COCO_ARM"-*.whl
cat > "$ROOT/python" <<EOF
#!/bin/sh
# aarch64 Python 3.11 under qemu-user: $ROOT/sysroot, packages from $ROOT/site
PYTHONPATH="$ROOT/site" exec qemu-aarch64-static -L "$ROOT/sysroot" "$ROOT/sysroot/usr/bin/python3.11" "\$@"
EOF
chmod +x "$ROOT/python"
"$ROOT/python" -c "import platform, numpy, onnxruntime, ncnn, pycocotools.coco; print(platform.machine(), 'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__, 'ncnn', ncnn.__version__, 'pycocotools')"

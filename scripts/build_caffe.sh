#!/usr/bin/env bash
# Build Caffe (CPU, Python layer, pycaffe, HDF5) from the brocolli-caffe sdist on PyPI, into a
# cache folder outside the checkout, and print the finished build's folder on the last line.
#
#   scripts/build_caffe.sh PYTHON [--where]
#
# --where only prints the build folder these settings map to (built or not) and exits.
#
# PYTHON is the virtual environment's interpreter: pycaffe and the embedded interpreter of the
# `caffe` tool are compiled against its headers, numpy and libpython.
#
# Environment:
#   FOCAL_LOSS_CAFFE_CACHE  cache folder (default: ${XDG_CACHE_HOME:-~/.cache}/focal_loss_layer)
#   CAFFE_BUILD_JOBS        parallel compile jobs (default: number of cores)
#
# The build folder is named by source version and a hash of what shapes the build (source sha256,
# patches, the Makefile.config made for this interpreter, numpy's version), so a change in any of
# them builds anew and an unchanged set-up, or a fresh clone, reuses the build. A build is made in
# a temporary folder and renamed into place only once complete: a half-finished build never counts.
set -euo pipefail

CAFFE_PACKAGE=brocolli-caffe
CAFFE_VERSION=9.0.2
CAFFE_URL="https://files.pythonhosted.org/packages/d6/2f/7eca8c691bacdfe2cd3bb5d20a780f692a3aa6039e972dc330806a747d7c/brocolli-caffe-9.0.2.tar.gz"
CAFFE_SHA256=c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "[build_caffe] $*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] && { [ $# -eq 1 ] || [ "$2" = "--where" ]; } \
  || die "usage: $0 PYTHON [--where]  (PYTHON: the venv interpreter pycaffe is built for)"
python="$1"
where_only="${2:-}"
[ -x "$python" ] || die "interpreter '$python' not found or not executable"

# Facts about the interpreter that the build bakes in.
read -r py_version py_nodot py_include py_libdir numpy_include numpy_version < <("$python" - <<'PY'
import sys, sysconfig, numpy
print(sysconfig.get_python_version(), sysconfig.get_config_var("py_version_nodot"),
      sysconfig.get_paths()["include"], sysconfig.get_config_var("LIBDIR"),
      numpy.get_include(), numpy.__version__)
PY
) || die "cannot read the build facts from '$python' (is numpy installed in it?)"

# The build settings, as they go into the key: everything but numpy's include folder, which
# lies inside the venv and so differs between checkouts (its headers are named by numpy's version).
settings="$(sed -e "s|@PYTHON_INCLUDE@|$py_include|" -e "s|@PYTHON_LIBDIR@|$py_libdir|" \
    -e "s|@PYTHON_NODOT@|$py_nodot|" -e "s|@PYTHON_VERSION@|$py_version|" \
    "$here/caffe/Makefile.config.in")"
build_key="$( { echo "$CAFFE_SHA256 numpy=$numpy_version"; echo "$settings"; \
  cat "$here"/caffe/patches/*.patch; } | sha256sum | cut -c1-12)"
cache_root="${FOCAL_LOSS_CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/focal_loss_layer}"
build_dir="$cache_root/caffe-$CAFFE_VERSION-$build_key"
stamp="$build_dir/.focal-loss-build-complete"
if [ -n "$where_only" ]; then
  echo "$build_dir"
  exit 0
fi
"$here/install_system_packages.sh"

if [ -f "$stamp" ]; then
  say "cache hit: reusing $build_dir (built $(cat "$stamp"))"
  echo "$build_dir"
  exit 0
fi
say "no finished build at $build_dir: building (about 7 minutes on 2 cores)"
mkdir -p "$cache_root/downloads"

tarball="$cache_root/downloads/$CAFFE_PACKAGE-$CAFFE_VERSION.tar.gz"
if [ ! -f "$tarball" ] || ! echo "$CAFFE_SHA256  $tarball" | sha256sum -c --status; then
  say "downloading $CAFFE_URL"
  "$python" -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
    "$CAFFE_URL" "$tarball.part"
  echo "$CAFFE_SHA256  $tarball.part" | sha256sum -c --status \
    || die "sha256 of the download is not $CAFFE_SHA256: refusing to build it"
  mv "$tarball.part" "$tarball"
fi
say "sha256 ok: $CAFFE_SHA256"

work="$(mktemp -d "$cache_root/.building-XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
src="$work/$CAFFE_PACKAGE-$CAFFE_VERSION"
# The sdist carries its upstream's CI checkout (with credentials in .git/config), and protoc-3.0
# outputs that do not compile against Debian's protobuf 3.21: drop both; the build regenerates
# the protobuf code.
rm -rf "$src/.git" "$src/include/caffe/proto/caffe.pb.h" "$src/src/caffe/proto/caffe.pb.cc" \
  "$src/python/caffe/proto/caffe_pb2.py"
for p in "$here"/caffe/patches/*.patch; do
  patch -s -p1 -d "$src" < "$p" || die "patch $(basename "$p") does not apply"
done
echo "$settings" | sed -e "s|@NUMPY_INCLUDE@|$numpy_include|" > "$src/Makefile.config"

jobs="${CAFFE_BUILD_JOBS:-$(nproc)}"
log="$work/build.log"
say "compiling with $jobs jobs (log: $build_dir/build.log)"
start=$(date +%s)
if ! make -C "$src" -j"$jobs" all py > "$log" 2>&1; then
  tail -n 40 "$log" >&2
  cp "$log" "$cache_root/last-failed-build.log"
  die "make failed; full log in $cache_root/last-failed-build.log"
fi
seconds=$(( $(date +%s) - start ))
mv "$log" "$src/build.log"
date -u +"%Y-%m-%dT%H:%M:%SZ in ${seconds}s" > "$src/.focal-loss-build-complete"
rm -rf "$build_dir"
mv "$src" "$build_dir"
say "built in ${seconds}s: $build_dir"
echo "$build_dir"

#!/usr/bin/env bash
# Make, once, a venv of the oldest Python, numpy and numba that setup.py accepts (the pins in
# requirements/floor.txt, from PyPI), and print its interpreter's path on the last line.
#
#   scripts/floor_venv.sh PYTHON_VERSION      e.g. 3.9 (pyenv's newest 3.9.x is used)
#
# tests/test_version_floor.py runs tests/floor_check.py in it, so that the floors setup.py
# declares are the ones tested. The interpreter comes from pyenv
# (${PYENV_ROOT:-~/.pyenv}/versions/X.Y.*/bin/pythonX.Y).
#
# Environment:
#   FOCAL_LOSS_CAFFE_CACHE  cache folder, as for scripts/build_caffe.sh
#                           (default: ${XDG_CACHE_HOME:-~/.cache}/focal_loss_layer)
#
# The venv folder is named by a hash of requirements/floor.txt and the interpreter's full version,
# so a change of either makes a new venv. It is made in a temporary folder and renamed into place
# once complete: a half-made venv never counts. Use only its bin/python (python -m pip, ...): the
# entry scripts beside it (pip, activate) name the temporary folder it was made in.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
floor="$here/../requirements/floor.txt"
say() { echo "[floor_venv] $*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -eq 1 ] && [[ "$1" =~ ^[0-9]+\.[0-9]+$ ]] \
  || die "usage: $0 PYTHON_VERSION  (major.minor, e.g. 3.9: the Python floor of setup.py)"
version="$1"
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
base="$(ls -d "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -n 1 || true)"
[ -n "$base" ] && [ -x "$base" ] || die "no Python $version under $pyenv_root/versions \
(looked for $pyenv_root/versions/$version.*/bin/python$version): install it with \
'pyenv install $version' to test the declared Python floor"
full_version="$("$base" -c 'import platform; print(platform.python_version())')"

key="$( { echo "python $full_version"; cat "$floor"; } | sha256sum | cut -c1-12)"
cache_root="${FOCAL_LOSS_CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/focal_loss_layer}"
venv="$cache_root/floor-venv-py$full_version-$key"
stamp="$venv/.focal-loss-venv-complete"
if [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then
  say "cache hit: reusing $venv (made $(cat "$stamp"))"
  echo "$venv/bin/python"
  exit 0
fi

say "no finished venv at $venv: making it from $base with requirements/floor.txt from PyPI"
mkdir -p "$cache_root"
rm -rf "$venv"   # a folder without the stamp is no venv of this script's (it renames only whole ones)
work="$(mktemp -d "$cache_root/.making-floor-venv-XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
"$base" -m venv "$work/venv" >&2
# Wheels only: an sdist of an old numpy would compile for many minutes, and test a build of ours.
"$work/venv/bin/python" -m pip install --disable-pip-version-check --only-binary=:all: \
  -r "$floor" >&2 || die "pip could not install requirements/floor.txt into Python $full_version"
"$work/venv/bin/python" -m pip check >&2 || die "the floor pins do not satisfy each other"
seconds=$(( $(date +%s) - start ))
date -u +"%Y-%m-%dT%H:%M:%SZ in ${seconds}s" > "$work/venv/.focal-loss-venv-complete"
# Another run may have finished the same venv meanwhile: then keep that one (mv -T refuses to
# replace a non-empty folder).
if ! mv -T "$work/venv" "$venv" 2>/dev/null; then
  [ -f "$stamp" ] || die "cannot move the new venv to $venv"
  say "another run finished $venv first: using it"
fi
say "made in ${seconds}s: $venv"
echo "$venv/bin/python"

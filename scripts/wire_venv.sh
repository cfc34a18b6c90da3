#!/usr/bin/env bash
# Wire a finished Caffe build into the project's virtual environment:
#   - a caffe.pth in site-packages, so the venv's python imports pycaffe;
#   - VENV/bin/caffe, Caffe's own command-line tool, run with PYTHONPATH naming the venv's
#     site-packages, pycaffe and the project (the tool embeds Python and knows nothing of venvs;
#     .pth files are not read from PYTHONPATH entries, so each folder is named).
#
#   scripts/wire_venv.sh VENV CAFFE_BUILD_DIR
set -euo pipefail
venv="$(cd "$1" && pwd)"
caffe_root="$(cd "$2" && pwd)"
project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
site_packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

[ -x "$caffe_root/build/tools/caffe" ] || { echo "no caffe tool in $caffe_root" >&2; exit 1; }
echo "$caffe_root/python" > "$site_packages/caffe.pth"

cat > "$venv/bin/caffe" <<SH
#!/usr/bin/env bash
# Caffe's command-line tool with this venv's Python packages, pycaffe and focal_loss_layer
# importable by the Python layers it runs. Written by scripts/wire_venv.sh.
export PYTHONPATH="$project:$caffe_root/python:$site_packages\${PYTHONPATH:+:\$PYTHONPATH}"
exec "$caffe_root/build/tools/caffe" "\$@"
SH
chmod +x "$venv/bin/caffe"
echo "$caffe_root" > "$venv/.caffe-root"

#!/usr/bin/env bash
# Adds pydicom's bundled test files (every transfer syntax and character set it
# ships) to the dicom_intake corpus, each behind the harness's chunk-size byte.
set -euo pipefail
cd "$(dirname "$0")"
python="${RENKEI_PYTHON:-python3}"
dirs="$("$python" -c 'import os, pydicom; d = os.path.join(os.path.dirname(pydicom.__file__), "data"); print(os.path.join(d, "test_files"), os.path.join(d, "charset_files"))')"
mkdir -p corpus/dicom_intake
n=0
for dir in $dirs; do
    for f in "$dir"/*.dcm; do
        { printf '\x3f'; cat "$f"; } > "corpus/dicom_intake/pydicom-$(basename "$f" .dcm)"
        n=$((n + 1))
    done
done
echo "$n pydicom seeds"

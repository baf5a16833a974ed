# Sourced by scripts/demo and scripts/test-all: installs what the build and the
# tests need that is not a crate, when it is missing. Debian package names.
#   libclang-dev  bindgen (openssl-sys, pulled in by Sequoia's OpenSSL backend)
#   libssl-dev, pkg-config  Sequoia's OpenSSL backend
# The Japanese PDF font (IPAex Gothic) ships in pdf/fonts and is compiled in,
# so running needs no font package; the tests add poppler-utils (pdftotext).
# Extra packages to check can be passed as arguments: "command:package".

renkei_install_prereqs() {
    local missing=()
    dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
    dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    local pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
            echo "need root to install: ${missing[*]} (or install them yourself)" >&2
            return 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

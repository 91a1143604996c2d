#!/usr/bin/env bash
# The one dependency installer of both Quick start commands (README): installs what is
# missing on a Debian machine, nothing that is already there.
#
#   scripts/deps.sh build   # what building compactd needs: a C toolchain, protoc and the
#                           # protobuf well-known types (etcd-client compiles etcd's .proto
#                           # files), curl, and the Rust toolchain (rustup, minimal profile)
#   scripts/deps.sh test    # the above, plus what the test suite needs: rustfmt and clippy,
#                           # promtool (prometheus), etcd and etcdctl, openssl, Python's venv
#                           # (SeaweedFS comes from PyPI), and chromium with chromedriver (the
#                           # web UI's browser tests)
#
# Every check looks for the file or command itself, so a machine where a tool came from
# elsewhere is left alone. Debian's `protobuf-compiler` without recommends lacks the
# google/protobuf/*.proto includes (they are in `libprotobuf-dev`): both are checked.
set -euo pipefail
what=${1:-build}
case "$what" in build | test) ;; *)
  echo "usage: scripts/deps.sh build|test" >&2
  exit 2
  ;;
esac

log() { printf '==> %s\n' "$*"; }

sudo_=""
[ "$(id -u)" = 0 ] || sudo_=sudo

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ "$what" = test ]; then
  command -v promtool >/dev/null || need+=(prometheus)
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  command -v openssl >/dev/null || need+=(openssl) # certificates for the etcd TLS test
  command -v python3 >/dev/null || need+=(python3)
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
  # The browser tests (tests/common/webdriver.rs) look for these two paths first.
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
fi
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Never let a package start its service (etcd, prometheus) on this host.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_ tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_ chmod +x /usr/sbin/policy-rc.d
  fi
  $sudo_ apt-get update -qq
  $sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  log "installing the Rust toolchain (rustup, minimal profile)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ "$what" = test ]; then
  for component in rustfmt clippy; do
    probe=$component
    [ "$component" = clippy ] && probe=clippy-driver
    if ! command -v "$probe" >/dev/null && command -v rustup >/dev/null; then
      log "installing the Rust component $component"
      rustup component add "$component"
    fi
  done
fi

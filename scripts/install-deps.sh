#!/usr/bin/env bash
# Installs what building, testing and benchmarking nines needs, from Debian 12 packages and npm.
# Does nothing when everything is already present. Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail
cd "$(dirname "$0")/.."

want=build
[ $# -gt 0 ] && want=$1

build_pkgs=(g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libmimalloc-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev libgtest-dev
  libhiredis-dev
  curl ca-certificates nodejs npm)
# prometheus: promtool and a server for the rules tests; chromium and a font: the dashboard's
# browser test; testssl.sh: what nines tls-check is compared with; iproute2: the veth links of
# the tests whose hosts live in network namespaces (tests/netns); adb: the device keeper tested
# against the real adb server (with fake phones); redis-server and redis-sentinel: the shared
# journal's store, a primary with replicas and Sentinels on loopback (tests/integration/redis_*);
# kubernetes-client: kubectl, whose kustomize renders deploy/kubernetes (tests/deploy).
test_pkgs=(clang-14 libclang-rt-14-dev openssl prometheus chromium fonts-dejavu-core testssl.sh
  iproute2 adb redis-server redis-sentinel kubernetes-client)
bench_pkgs=(nginx wrk haproxy python3 linux-perf)

pkgs=("${build_pkgs[@]}")
case "$want" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # node and npm may come from elsewhere on a developer machine; the command is what counts.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    # Any kubectl renders the manifests (they keep to what Debian's 1.20 understands).
    kubernetes-client) command -v kubectl >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, as locked in package-lock.json: uPlot for the dashboard built into the binary,
# the end-to-end tests' clients (the openai SDK, playwright-core driving Debian's chromium), and
# the Kubernetes API's schemas for the manifests' test (kubernetes-models, @kubernetes/client-node).
npm_ci() {
  local dir=$1 marker=$2
  if [ ! -e "$dir/node_modules/$marker" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
}
npm_ci web uplot/dist/uPlot.iife.min.js
if [ "$want" != build ]; then
  npm_ci tests/e2e playwright-core
  npm_ci tests/deploy kubernetes-models
fi
exit 0

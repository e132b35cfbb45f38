# shellcheck shell=bash
# Builds a local Debian 12 base image with the host's Node 20, for machines that cannot pull images
# (no registry reachable). Source it, then call:
#
#   debian_base_image TAG [EXTRA_PACKAGE...]
#
# The image is laid out like the official node:20-bookworm-slim, so docker/Dockerfile takes it as
# `--build-arg NODE_IMAGE=TAG` unchanged: node in /usr/local/bin, npm in
# /usr/local/lib/node_modules/npm, Node's headers in /usr/local/include/node (node-gyp builds the
# addon against them instead of downloading them).
#
# How (facts in ../shared/research/fresh-machine.md):
# - `debootstrap bookworm` with the default variant (minbase lacks netbase, so service names do not
#   resolve), from the host's own Debian mirror, plus ca-certificates and EXTRA_PACKAGEs;
# - the host's node binary, npm and headers copied in (Debian 12's nodejs is 18);
# - the host's apt sources, apt proxy/CA settings, CA certificates and npm registry/proxy/CA settings
#   copied in, so apt and npm inside containers reach the mirror and registry the way the host does;
# - imported with `docker import` (no registry involved).
#
# The bootstrapped root file system is cached as a tarball (DEBIAN_BASE_CACHE, default
# /var/cache/keepalive-ts) keyed by the package list; an existing image TAG is reused as it is
# (DEBIAN_BASE_REBUILD=1 forces a rebuild).
#
# Needs root, debootstrap and a running docker daemon.

debian_base_log() { printf '[debian-base] %s\n' "$*" >&2; }

# The first URIs: of the host's deb822 sources (or the first deb line), else deb.debian.org.
debian_base_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# Copies the host's apt, CA and npm settings into the root file system $1.
debian_base_host_settings() {
  local root=$1 f
  # apt: the sources (only enabled files) and any Acquire proxy / CA / TLS settings.
  mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/apt/apt.conf.d"
  rm -f "$root/etc/apt/sources.list"
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && cp "$f" "$root/etc/apt/sources.list.d/"
  done
  for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    if grep -qiE 'Acquire::(https?::)?(Proxy|CaInfo|Verify|SslCert)|Acquire::https?::' "$f"; then
      cp "$f" "$root/etc/apt/apt.conf.d/$(basename "$f")"
    fi
  done
  # The host's CAs (an intercepting egress proxy's CA among them).
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # npm's global config for prefix /usr/local: CA bundle, registry and proxies as the host has them.
  mkdir -p "$root/usr/local/etc"
  {
    echo "cafile=/etc/ssl/certs/ca-certificates.crt"
    echo "nodedir=/usr/local"
    echo "audit=false"
    echo "fund=false"
    echo "update-notifier=false"
    local key val
    for key in registry proxy https-proxy noproxy strict-ssl; do
      val=$(npm config get "$key" 2>/dev/null || true)
      case "$val" in ''|null|undefined) ;; *) echo "$key=$val" ;; esac
    done
  } > "$root/usr/local/etc/npmrc"
  # Proxies from the environment, for apt / npm / curl run in containers built from this base.
  : > "$root/etc/environment"
  for key in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!key:-}" ] && echo "$key=${!key}" >> "$root/etc/environment"
  done
  return 0
}

# Copies the host's Node (binary, npm, corepack, headers) to /usr/local in $1.
debian_base_node() {
  local root=$1 node npmdir
  node=$(command -v node)
  npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  case "$(node -p 'process.versions.node.split(".")[0]')" in
    20) ;;
    *) debian_base_log "host node is $(node --version), not 20"; return 1 ;;
  esac
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/usr/local/include"
  cp "$(readlink -f "$node")" "$root/usr/local/bin/node"
  cp -a "$npmdir" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  local inc
  for inc in /usr/include/node /usr/local/include/node; do
    if [ -f "$inc/node.h" ]; then cp -a "$inc" "$root/usr/local/include/node"; break; fi
  done
  [ -f "$root/usr/local/include/node/node.h" ] || { debian_base_log "no Node headers on the host (/usr/include/node)"; return 1; }
}

debian_base_image() {
  local tag=$1; shift
  local packages="ca-certificates${1:+,$(IFS=,; echo "$*")}"
  if [ "${DEBIAN_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    debian_base_log "$tag exists; reusing it"
    return 0
  fi
  command -v debootstrap >/dev/null || { debian_base_log "debootstrap is not installed (apt-get install debootstrap)"; return 1; }
  local cache=${DEBIAN_BASE_CACHE:-/var/cache/keepalive-ts}
  local key; key=$(echo "$packages" | md5sum | cut -c1-8)
  local tarball="$cache/bookworm-$key.tar"
  mkdir -p "$cache"
  if [ ! -s "$tarball" ] || [ "${DEBIAN_BASE_REBUILD:-0}" = 1 ]; then
    local boot; boot=$(mktemp -d /var/tmp/debian-base.XXXXXX)
    local mirror; mirror=$(debian_base_mirror)
    debian_base_log "debootstrap bookworm from $mirror (+ $packages) into $boot"
    if ! debootstrap --include="$packages" bookworm "$boot" "$mirror" > "$cache/debootstrap-$key.log" 2>&1; then
      debian_base_log "debootstrap failed; see $cache/debootstrap-$key.log"
      tail -20 "$cache/debootstrap-$key.log" >&2
      umount -R "$boot/proc" "$boot/sys" 2>/dev/null || true
      rm -rf --one-file-system "$boot"
      return 1
    fi
    apt-get -o RootDir="$boot" clean >/dev/null 2>&1 || rm -rf "$boot/var/cache/apt/archives/"*.deb
    rm -rf "$boot/var/lib/apt/lists/"*
    tar -C "$boot" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$boot"
  else
    debian_base_log "using cached root file system $tarball"
  fi
  local root; root=$(mktemp -d /var/tmp/debian-base-root.XXXXXX)
  tar -C "$root" --numeric-owner -xf "$tarball"
  debian_base_host_settings "$root" && debian_base_node "$root" || { rm -rf --one-file-system "$root"; return 1; }
  debian_base_log "importing $tag"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    - "$tag" >/dev/null
  local rc=$?
  rm -rf --one-file-system "$root"
  return $rc
}

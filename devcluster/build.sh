#!/usr/bin/env bash
# Builds the dev cluster's binaries from the pinned Go modules into a cache
# outside the repo, keyed by version; a binary already there is not rebuilt.
# Prints the bin directory on stdout (progress goes to stderr).
#   build.sh          etcd, kwok, the Kubernetes binaries
#   build.sh kueue    only Kueue (optional component), in its own bin directory
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ANT_DEVCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ant/devcluster}
bin="$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $version_pkg.gitVersion=$K8S_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean"
export CGO_ENABLED=0

build() { # module-dir output package [ldflags]
  local dir=$1 out=$2 pkg=$3 ldflags=${4:--s -w}
  if [[ -x "$bin/$out" ]]; then return; fi
  echo "building $out ($pkg)" >&2
  local start=$SECONDS
  (cd "$here/$dir" && go build -mod=readonly -trimpath -tags selinux,notest,grpcnotrace \
    -ldflags "$ldflags" -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
  echo "built $out in $((SECONDS - start))s" >&2
}

# Kueue, run outside a cluster, would read its certificates from fixed absolute paths
# (/etc/kueue/metrics/certs, /visibility). The binary built here reads them relative to
# its working directory instead (metrics-certs/, visibility-certs/): its main package is
# upstream's cmd/kueue/main.go with that one string changed, built in the cache next to a
# copy of the wrapper module's go.mod/go.sum; -X sets pkg/visibility.certDir. Nothing else
# changes.
if [[ ${1:-} == kueue ]]; then
  bin="$cache/bin/kueue-$KUEUE_VERSION"
  mkdir -p "$bin"
  if [[ ! -x "$bin/kueue" ]]; then
    upstream=$(cd "$here/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)
    src="$cache/src/kueue-$KUEUE_VERSION"
    mkdir -p "$src"
    cp "$here/kueue/go.mod" "$here/kueue/go.sum" "$src/"
    chmod u+w "$src/go.mod" "$src/go.sum"
    sed 's|"/etc/kueue/metrics/certs"|"metrics-certs"|' "$upstream/cmd/kueue/main.go" >"$src/main.go"
    grep -q '"metrics-certs"' "$src/main.go" ||
      { echo "build.sh: $upstream/cmd/kueue/main.go no longer names /etc/kueue/metrics/certs" >&2; exit 1; }
    echo "building kueue (sigs.k8s.io/kueue/cmd/kueue, certificate paths relative)" >&2
    start=$SECONDS
    (cd "$src" && go build -mod=readonly -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION -X sigs.k8s.io/kueue/pkg/visibility.certDir=visibility-certs" \
      -o "$bin/kueue.tmp" .)
    mv "$bin/kueue.tmp" "$bin/kueue"
    echo "built kueue in $((SECONDS - start))s" >&2
  fi
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
build etcd etcd go.etcd.io/etcd/server/v3
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build kubernetes "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$k8s_ldflags"
done
echo "$bin"

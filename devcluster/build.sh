#!/usr/bin/env bash
# Builds the dev cluster's binaries from the pinned Go modules into a cache
# outside the repo, keyed by version; a binary already there is not rebuilt.
# Prints the bin directory on stdout (progress goes to stderr).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ANT_DEVCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ant/devcluster}
bin="$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$bin"

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

build etcd etcd go.etcd.io/etcd/server/v3
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build kubernetes "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$k8s_ldflags"
done
echo "$bin"

#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (CI has none):
#   1. lint: only known instructions, pinned base images (no :latest), every
#      COPY --from names an earlier stage, the ports cgwd needs are exposed;
#   2. build: runs the build stage's own RUN commands, in order, in a copy of
#      the tree laid out as the Dockerfile's COPY lines lay it out, with
#      /out mapped to a temporary directory, then checks that every file the
#      runtime stage copies out of /out exists and is a static binary;
#   3. the runtime stage equals deploy/container/Containerfile.runtime (which
#      `make image` builds and the e2e runs) except where the files come from.
set -euo pipefail
cd "$(dirname "$0")/.."
df=Dockerfile
fail() { echo "dockerfile-check: $*" >&2; exit 1; }

# Join continuation lines, drop comments and blank lines.
mapfile -t lines < <(sed -e 's/[[:space:]]*\\$/ \\/' "$df" | awk '
  /^[[:space:]]*#/ { next }
  { sub(/[[:space:]]+$/, "") }
  /\\$/ { sub(/\\$/, ""); buf = buf $0; next }
  { print buf $0; buf = "" }' | grep -v '^[[:space:]]*$')

known=" FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL "
stages=()
stage=""
declare -a build_cmds=()
copies_out=()
exposed=""
for l in "${lines[@]}"; do
  ins=${l%% *}; ins=${ins^^}; rest=${l#* }
  [[ $known == *" $ins "* ]] || fail "unknown instruction: $l"
  case $ins in
    FROM)
      img=$(awk '{print $1}' <<<"$rest")
      [[ $img == scratch || ($img == *:* && $img != *:latest) ]] || fail "base image $img is not pinned to a tag"
      stage=$(awk 'toupper($2)=="AS"{print $3}' <<<"$rest")
      [[ -n $stage ]] && stages+=("$stage")
      ;;
    COPY)
      if [[ $rest == --from=* ]]; then
        from=${rest#--from=}; from=${from%% *}
        printf '%s\n' "${stages[@]}" | grep -qx "$from" || fail "COPY --from=$from names no earlier stage"
        read -r -a parts <<<"${rest#* }"
        [[ ${parts[0]} == --chown=* ]] && parts=("${parts[@]:1}")
        copies_out+=("${parts[@]:0:${#parts[@]}-1}")
      elif [[ $stage == build ]]; then
        build_cmds+=("COPY $rest")
      fi
      ;;
    RUN) [[ $stage == build ]] && build_cmds+=("RUN $rest") ;;
    ARG) [[ $stage == build ]] && build_cmds+=("ARG $rest") ;;
    EXPOSE) exposed="$exposed $rest" ;;
  esac
done
for p in 500/udp 4500/udp; do
  [[ " $exposed " == *" $p "* ]] || fail "EXPOSE lacks $p"
done
[[ ${#build_cmds[@]} -gt 0 ]] || fail "no build stage named 'build'"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src out=$work/out
mkdir -p "$src" "$out"
declare -A args=()
for c in "${build_cmds[@]}"; do
  kind=${c%% *}; body=${c#* }
  case $kind in
    ARG) k=${body%%=*}; v=${body#*=}; [[ $body == *=* ]] || v=""; args[$k]=$v ;;
    COPY)
      read -r -a parts <<<"$body"
      n=${#parts[@]}
      for ((i = 0; i < n - 1; i++)); do
        if [[ ${parts[i]} == . ]]; then
          git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
        else
          cp -p "${parts[i]}" "$src/"
        fi
      done
      ;;
    RUN)
      cmd=${body//\/out\//$out\/}
      for k in "${!args[@]}"; do cmd=${cmd//\$\{$k\}/${args[$k]}}; cmd=${cmd//\$$k/${args[$k]}}; done
      echo "dockerfile-check: RUN $cmd"
      (cd "$src" && bash -euo pipefail -c "$cmd") || fail "build stage command failed: $cmd"
      ;;
  esac
done
for f in "${copies_out[@]}"; do
  [[ $f == /out/* ]] || continue
  bin=$out/${f#/out/}
  [[ -e $bin ]] || fail "runtime stage copies $f but the build stage did not produce it"
  [[ -d $bin ]] && continue
  [[ -x $bin ]] || fail "runtime stage copies $f but it is not executable"
  file "$bin" | grep -q 'statically linked' || fail "$f is not statically linked"
done

# The runtime stage (after the last FROM) must be Containerfile.runtime's,
# with COPY sources reduced to their base names.
runtime_stage() {
  sed -e 's/[[:space:]]*\\$/ \\/' "$1" | awk '
    /^[[:space:]]*#/ { next }
    { sub(/[[:space:]]+$/, "") }
    /\\$/ { sub(/\\$/, ""); buf = buf $0; next }
    { print buf $0; buf = "" }' | grep -v '^[[:space:]]*$' | awk '/^FROM /{n=NR} {l[NR]=$0} END{for(i=n;i<=NR;i++) print l[i]}' |
  awk '$1=="COPY" { out="COPY"; for (i=2;i<=NF;i++) { w=$i; if (w ~ /^--from=/) continue; if (i<NF) { sub(/.*\//, "", w) } out=out" "w } print out; next } { print }'
}
diff <(runtime_stage "$df") <(runtime_stage deploy/container/Containerfile.runtime) >&2 ||
  fail "the Dockerfile's runtime stage differs from deploy/container/Containerfile.runtime (above: < Dockerfile, > Containerfile.runtime)"
echo "dockerfile-check: lint OK, build stage OK (${#copies_out[@]} files, binaries static), runtime stage = Containerfile.runtime"

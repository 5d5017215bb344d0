#!/usr/bin/env bash
# The whole job as a shell script of curl and jq, as many users write it:
# log in, list every image, delete the COUNT oldest images (default 500) that
# are neither dangling nor DSM images, log out. Each response is checked for
# "success": true, as synosh checks it.
#
#   bench/job.sh URL USER PASSWORD_FILE [COUNT]
#
# The password, the session id and the synotoken go through files, never
# through the arguments of curl or jq.
set -euo pipefail
url=$1 user=$2 password_file=$3 count=${4:-500}
api=$url/webapi/entry.cgi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

head -n 1 "$password_file" | tr -d '\r\n' >"$work/password"
curl -sS -o "$work/login.json" --data-urlencode "account=$user" \
  --data-urlencode "passwd@$work/password" \
  -d 'api=SYNO.API.Auth&version=7&method=login&format=sid&enable_syno_token=yes' "$api"
jq -e .success "$work/login.json" >/dev/null
jq -r '"Cookie: id=\(.data.sid)\nX-SYNO-TOKEN: \(.data.synotoken)"' "$work/login.json" \
  >"$work/headers"

curl -sS -G -o "$work/list.json" -H "@$work/headers" \
  -d 'api=SYNO.Docker.Image&version=1&method=list&offset=0&limit=-1&show_dsm=false' "$api"
jq -e .success "$work/list.json" >/dev/null
jq -r --argjson count "$count" '.data.images
  | map(select(.repository != "<none>" and (.is_ddsm | not)))
  | sort_by(.created, .repository, .tag) | .[:$count][]
  | "repository=\(.repository | @uri)&tag=\(.tag | @uri)"' "$work/list.json" >"$work/targets"

while read -r target; do
  curl -sS -H "@$work/headers" \
    -d "api=SYNO.Docker.Image&version=1&method=delete&$target&force=true" "$api" |
    jq -e .success >/dev/null || { echo "job.sh: delete $target failed" >&2; exit 1; }
done <"$work/targets"

curl -sS -H "@$work/headers" -d 'api=SYNO.API.Auth&version=7&method=logout' "$api" |
  jq -e .success >/dev/null

#!/bin/sh
# One HTTP/1.0 exchange on stdin/stdout. systemd-socket-activate (--accept --inetd) runs this once per
# connection, so the image needs no web server package: the Debian base OS already has both.
# $1 is the document root (the image's CMD); only plain file names under it are served.
set -u
root=${1:-/srv/web/public}
cr=$(printf '\r')

respond() { # status content-type length; the body follows on stdout unless the method is HEAD
  printf 'HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' "$1" "$2" "$3"
  echo "${method:-?} ${target:-?} ${1%% *}" >&2
}
respond_text() { # status text
  respond "$1" 'text/plain; charset=utf-8' "$((${#2} + 1))"
  [ "$method" = HEAD ] || printf '%s\n' "$2"
}

read -r method target version || exit 0
# Read the request headers up to the blank line before answering, so the client is not reset mid-send.
while read -r line; do
  case "$line" in '' | "$cr") break ;; esac
done

case "$method" in GET | HEAD) ;; *) respond_text '405 Method Not Allowed' "method $method is not allowed"; exit 0 ;; esac
path=${target%%\?*}
case "$path" in
  /) name=index.html ;;
  /healthz) respond_text '200 OK' ok; exit 0 ;;
  /*) name=${path#/} ;;
  *) respond_text '400 Bad Request' "bad request target $target"; exit 0 ;;
esac
# A plain file name only: no slashes, no leading dot, so nothing outside the document root is reachable.
case "$name" in
  .* | *[!A-Za-z0-9._-]*) respond_text '404 Not Found' "no such page: $path"; exit 0 ;;
esac
file=$root/$name
if [ ! -f "$file" ]; then respond_text '404 Not Found' "no such page: $path"; exit 0; fi
case "$name" in
  *.html) type='text/html; charset=utf-8' ;;
  *.css) type='text/css' ;;
  *.json) type='application/json' ;;
  *) type='text/plain; charset=utf-8' ;;
esac
respond '200 OK' "$type" "$(wc -c < "$file")"
[ "$method" = HEAD ] || cat "$file"

#!/bin/sh
# A tiny HTTP/1.1 responder for one connection on stdin/stdout (a nowait
# service): reads the request head, answers 200 with "Connection: close",
# and exits. Used by the default table and by the spawn benchmarks, where its
# start-up cost must be a shell's, not Node's.
cr=$(printf '\r')
while IFS= read -r line; do
  [ "$line" = "$cr" ] || [ -z "$line" ] && break
done
body="hello from wakeport (pid $$)"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' \
  $((${#body} + 1)) "$body"

#!/bin/sh
# Renders /etc/nginx/templates/*.template into /etc/nginx/conf.d/ (as the official nginx image's
# 20-envsubst-on-templates.sh does: only variables defined in the environment), then runs CMD.
set -eu
if [ -d /etc/nginx/templates ]; then
  defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
  for t in /etc/nginx/templates/*.template; do
    [ -f "$t" ] || continue
    out="/etc/nginx/conf.d/$(basename "$t" .template)"
    envsubst "$defined" < "$t" > "$out"
  done
fi
exec "$@"

#!/bin/sh
# g2c-relay in a container. The master key may come from a file (a Docker or Kubernetes secret):
# G2C_MASTER_KEY_FILE names it; G2C_MASTER_KEY, when set, wins.
set -eu
if [ -z "${G2C_MASTER_KEY:-}" ] && [ -n "${G2C_MASTER_KEY_FILE:-}" ]; then
  if [ ! -s "$G2C_MASTER_KEY_FILE" ]; then
    echo "relay: G2C_MASTER_KEY_FILE=$G2C_MASTER_KEY_FILE is missing or empty" >&2
    exit 1
  fi
  G2C_MASTER_KEY="$(cat "$G2C_MASTER_KEY_FILE")"
  export G2C_MASTER_KEY
fi
unset G2C_MASTER_KEY_FILE
exec node /app/relay/bin/g2c-relay.js "$@"

#!/usr/bin/env bash
# Runs a command; the storage layer turns this into "with an IPFS daemon started and stopped".
exec "$@"

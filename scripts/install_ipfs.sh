#!/usr/bin/env bash
# Placeholder until the storage layer lands: nothing to install yet.
exit 0

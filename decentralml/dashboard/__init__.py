"""The local, read-only dashboard: ``decentralml dashboard`` (see docs/dashboard.md).

:mod:`.snapshot` reads the chain (and the job store for accuracy curves) into one typed
snapshot; :mod:`.server` serves it as server-rendered HTML on 127.0.0.1 with a small vanilla JS
file that follows chain events over server-sent events. Nothing here holds or uses a key.
"""

"""Bob, a contributor with secrets where a contributor keeps them: the setting of the hostile-task
tests (a ``start_task.sh`` in tests/cli/test_sandbox_attacks.py, an entry point in a warm host in
tests/cli/test_warm_host_attacks.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path


class PlantedContributor:
    """Bob's homes, with a fresh secret in his SSH key and accounts file, and his data."""

    def __init__(self, url: str, tmp: Path, samples: str) -> None:
        self.url = url
        self.tmp = tmp
        self.secret = f"dml-secret-{uuid.uuid4().hex}"
        self.store = tmp / "store"
        self.home = tmp / "bob-dml"  # Bob's $DECENTRALML_HOME
        self.user_home = tmp / "bob-user"  # Bob's $HOME
        (self.user_home / ".ssh").mkdir(parents=True)
        (self.user_home / ".ssh" / "id_ed25519").write_text(f"PRIVATE KEY {self.secret}\n")
        self.home.mkdir()
        (self.home / "accounts.json").write_text(json.dumps({"bob": self.secret}))
        self.data = tmp / "data"
        self.data.mkdir()
        (self.data / "samples.txt").write_text(samples)
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])

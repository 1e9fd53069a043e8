"""What no command may print: the ML stack's start-up chatter (issue: a fresh machine's TensorFlow
logged it through absl whatever ``TF_CPP_MIN_LOG_LEVEL`` said). Tests that run a command the way
a user does check its whole output with :func:`assert_quiet`."""

from __future__ import annotations

import os

#: Lines (or parts) TensorFlow, absl, Keras and joblib print at start-up.
NOISE: tuple[str, ...] = (
    "oneDNN custom operations",
    "absl::InitializeLog",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Unable to register cu",
    "joblib will operate in serial mode",
    "computation_placer",
)

#: Variables that hide the noise; a user's shell has none of them, so neither does a command a
#: test runs as that user would.
QUIETING_ENV: tuple[str, ...] = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
                                 "JOBLIB_MULTIPROCESSING")


def assert_quiet(*outputs: str) -> None:
    """Fail naming the first noise line found in ``outputs``."""
    for text in outputs:
        for line in text.splitlines():
            hit = next((marker for marker in NOISE if marker in line), None)
            assert hit is None, f"start-up noise in a command's output: {line!r}"


def user_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) without the variables a user's shell would not set."""
    source = dict(os.environ if env is None else env)
    return {k: v for k, v in source.items() if k not in QUIETING_ENV}

"""The dashboard tests reuse the role tests' digits fixture."""

from tests.roles.conftest import digits

__all__ = ["digits"]

"""What every part of the configuration language shares: :class:`Strict`, the base of every config
section, and the two errors a user's config or grader spec raises.

Both errors are ``ValueError``s whose message names the field, the value and the fix; the CLI prints
one line and exits with status 2.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A config problem, phrased for the user: field, value, fix."""


class SpecError(ValueError):
    """A grader spec (or an environment's or task's reference to code) is invalid; the message names the field,
    the value and the fix."""


class Strict(BaseModel):
    """A config section: an unknown key is an error (a typo is named), it never changes once validated,
    and no float field takes NaN or +-inf (YAML's ``.nan`` / ``.inf``: an lr of inf makes every weight NaN)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

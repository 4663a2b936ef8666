"""Graders: programmatic reward functions behind one protocol (see ``base.py``)."""

from rft.graders.base import Grade, Grader, safe_grade
from rft.graders.registry import BUILDERS, build

__all__ = ["BUILDERS", "Grade", "Grader", "build", "safe_grade"]

"""Safety net: pre-flight doctor, grader audit, reward-hacking monitors."""

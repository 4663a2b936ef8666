"""Reward-hacking defences. Inside the training loop: the monitors (:mod:`rft.safety.monitors`, rules over
metric records) and the capability guard (:mod:`rft.safety.capability`). Before it: the attacks ``rft audit``
runs (:mod:`rft.safety.attacks`, completions per grader family; :mod:`rft.safety.episode_attacks`, scripted
episodes against an environment)."""

"""What runs inside the training loop to catch a run going wrong: reward-hacking monitors
(:mod:`rft.safety.monitors`) and the capability guard (:mod:`rft.safety.capability`). The commands
that check a setup before training, ``rft doctor`` and ``rft audit``, are :mod:`rft.doctor` and
:mod:`rft.audit`."""

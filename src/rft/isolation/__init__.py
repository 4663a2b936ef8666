"""Where untrusted and user code runs: ``sandbox`` (programs a model wrote: a separate process, namespaces,
limits; ``code_harness`` is what runs inside it), ``bounded`` (a trusted function on untrusted input under a
wall-clock and memory bound) and ``user_code`` (the host processes every call into a user's Python code runs
in). Nothing here imports the rest of rft."""

"""The command-line layer: one module per ``rft`` command, each holding its argument definitions
(``add_arguments``) and its run function (``run``) beside what the command does. ``rft.cli`` only
dispatches; the Python API (``rft.api``) calls the same functions."""

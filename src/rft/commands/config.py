"""``rft config``: the resolved config (defaults, file and ``--set`` overrides), or the fields of every
grader spec, task kind or environment kind."""

from __future__ import annotations

import argparse
import sys

from rft.commands.common import add_config_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rft.commands.openai_job import add_openai_job_arg

    add_config_args(p)
    p.add_argument("--graders", nargs="*", metavar="TYPE", help="print the spec fields (type, range, default, "
                   "description) of every grader type, or of the types named, instead of the config")
    p.add_argument("--tasks", nargs="*", metavar="NAME", help="print the fields of every built-in task (data.task), "
                   "or of the tasks named")
    p.add_argument("--environments", nargs="*", metavar="TYPE", help="print the fields of every environment type "
                   "(environment:), or of the types named")
    add_openai_job_arg(p)


def run(args: argparse.Namespace) -> int:
    from rft.config import load_config

    from rft.config.listing import environment_fields, grader_fields, task_fields

    for kinds, listing in ((args.graders, grader_fields), (args.tasks, task_fields),
                           (args.environments, environment_fields)):
        if kinds is not None:
            print(listing(kinds), end="")
            return 0
    if args.openai_job:
        from rft.commands.openai_job import openai_job_config

        openai_job_config(args, sys.stdout)
        return 0
    print(load_config(args.config, args.overrides).to_yaml(), end="")
    return 0

"""Shared pieces of the `keepstone` parser: no abbreviations, the Jira credential options, examples in
every command's --help, and shell completion generated from the parser itself."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from urllib.parse import urlparse


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that never takes `--tok` for `--token-env`; its subparsers are Parsers too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """(path, parser) for the parser and every subparser below it, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield from subcommands(child, (*path, name))


def add_examples(parser: argparse.ArgumentParser, examples: dict[str, list[str]]) -> None:
    """Put each command's examples (keyed by 'backup', 'backend create-user', ...) in its --help."""
    for path, p in subcommands(parser):
        lines = examples.get(" ".join(path))
        if lines:
            p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.allow_abbrev = False  # a parser a module made with argparse.ArgumentParser directly


# --- Jira credentials: the same options on every command that talks to Jira -------------------------


def jira_args(p: argparse.ArgumentParser) -> None:
    """--site, --email, --token-env and --token, for every command that talks to Jira."""
    g = p.add_argument_group("Jira")
    g.add_argument("--site", required=True, help="Jira site URL, e.g. https://example.atlassian.net")
    g.add_argument(
        "--email",
        default=os.environ.get("KEEPSTONE_JIRA_EMAIL", ""),
        help="the Jira account's email (or KEEPSTONE_JIRA_EMAIL)",
    )
    g.add_argument(
        "--token-env",
        default="KEEPSTONE_JIRA_TOKEN",
        metavar="VAR",
        help="environment variable holding the API token (default KEEPSTONE_JIRA_TOKEN)",
    )
    g.add_argument("--token", help="API token (prefer --token-env: arguments show up in process lists)")


def jira_credentials(args: argparse.Namespace) -> tuple[str, str, str] | str:
    """(site, email, token) from jira_args' options, or the one line that says what is missing."""
    site = args.site.strip()
    parsed = urlparse(site)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        bare = site.split("://", 1)[-1].lstrip("/")
        return f"--site {site!r} is not a site URL; give it with its scheme, e.g. https://{bare or 'example.atlassian.net'}"
    token = args.token or os.environ.get(args.token_env)
    if not token:
        return f"give the Jira API token in ${args.token_env} (or --token)"
    if not args.email:
        return "give the Jira account's email with --email (or KEEPSTONE_JIRA_EMAIL)"
    return site, args.email, token


# --- shell completion ---------------------------------------------------------------------------------


def _words(p: argparse.ArgumentParser) -> list[str]:
    words = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            words += list(action.choices)
        words += [o for o in action.option_strings if o.startswith("--") or len(o) == 2]
    return sorted(set(words), key=lambda w: (w.startswith("-"), w))


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A bash (or zsh, through bashcompinit) completion script for the commands and options of `parser`."""
    prog = parser.prog
    cases = []
    for path, p in sorted(subcommands(parser), key=lambda item: -len(item[0])):
        words = " ".join(_words(p))
        pattern = " ".join(path) if path else ""
        cases.append(f'        "{pattern}") words="{words}" ;;')
    fn = f"_{prog}_complete"
    body = f"""# {prog} completion ({shell}); generated from the parser by `{prog} completion {shell}`
{fn}() {{
    local cur path="" w i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        [[ "$w" == -* ]] && continue
        if [[ -n "$({fn}_words "${{path:+$path }}$w")" ]]; then path="${{path:+$path }}$w"; fi
    done
    COMPREPLY=($(compgen -W "$({fn}_words "$path")" -- "$cur"))
    [[ ${{#COMPREPLY[@]}} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}}
{fn}_words() {{
    local words=""
    case "$1" in
{chr(10).join(cases)}
    esac
    echo "$words"
}}
"""
    if shell == "zsh":
        body = "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body + f"complete -F {fn} {prog}\n"


def add_completion_command(sub, parser_of) -> None:
    """`keepstone completion bash|zsh`: print the script (`parser_of()` builds the whole parser)."""
    p = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash or zsh. Load it in the shell's startup file.",
    )
    p.add_argument("shell", choices=("bash", "zsh"))

    def run(args: argparse.Namespace) -> int:
        print(completion_script(parser_of(), args.shell), end="")
        return 0

    p.set_defaults(func=run)

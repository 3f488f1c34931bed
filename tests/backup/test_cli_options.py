"""The `keepstone` parser and its one-line errors, as real processes: nothing a refused command did not
finish stays behind (the whole folder tree is compared before and after)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keepstone.cli import build_parser
from keepstone.options import subcommands
from tests.backup.test_cli_errors import PASSWORD
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT


def run(cwd: Path, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KEEPSTONE_REPO_PASSWORD": PASSWORD,
        "KEEPSTONE_JIRA_TOKEN": token,
        "KEEPSTONE_DATA_DIR": str(cwd / "backend"),
        "KEEPSTONE_USER_PASSWORD": "a-password-for-the-test",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("KEEPSTONE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "keepstone.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tree(folder: Path) -> set[str]:
    """Every file and folder below `folder`."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# (name, command, {SITE} and {BAD_SITE} replaced, exit status, the one line's start, what it must not say)
ERRORS = [
    ("site without scheme", ["backup", "--site", "acme.atlassian.net", "--email", ADMIN_EMAIL, "--repo",
     "new", "--init"], 2, "keepstone: --site 'acme.atlassian.net' is not a site URL; give it with its "
     "scheme, e.g. https://acme.atlassian.net", "InvalidSchema"),
    ("restore site without scheme", ["restore", "--repo", "new", "--snapshot", "1a2b", "--project",
     "--original", "--site", "127.0.0.1:1", "--email", ADMIN_EMAIL], 2, "keepstone: --site '127.0.0.1:1' is not a site URL",
     "InvalidSchema"),
    ("missing repository", ["backup", "--site", "{SITE}", "--email", ADMIN_EMAIL, "--repo", "new"], 1,
     "keepstone: there is no repository at file://", "Traceback"),
    ("refused --init", ["backup", "--site", "{SITE}", "--email", ADMIN_EMAIL, "--repo", "deep/new",
     "--init", "--token", "not-the-token"], 1, "keepstone: Jira refused the credentials", "Traceback"),
    ("snapshots of nothing", ["snapshots", "--repo", "nowhere/repo"], 1,
     "keepstone: there is no repository at", "Traceback"),
    ("check of nothing", ["check", "--repo", "file:///nonexistent-keepstone/repo"], 1,
     "keepstone: there is no repository at /nonexistent-keepstone/repo", "Traceback"),
    ("abbreviated option", ["backup", "--site", "{SITE}", "--email", ADMIN_EMAIL, "--repo", "new", "--tok",
     "x"], 2, "keepstone backup: unknown option or argument '--tok'", "Traceback"),
    ("abbreviated restore option", ["restore", "--repo", "new", "--snapshot", "1", "--project",
     "--original", "--site", "{SITE}", "--token-e", "X"], 2,
     "keepstone restore: unknown option or argument '--token-e'", "Traceback"),
    ("no email", ["backup", "--site", "{SITE}", "--email", "", "--repo", "new", "--init"], 2,
     "keepstone: give the Jira account's email with --email", "Traceback"),
]  # fmt: skip


@pytest.mark.parametrize("name, argv, status, line, never", ERRORS, ids=[e[0] for e in ERRORS])
def test_each_error_is_one_line_and_leaves_nothing_behind(
    sandbox_site, tmp_path, name, argv, status, line, never
):
    argv = [a.replace("{SITE}", sandbox_site.url) for a in argv]
    before = tree(tmp_path)
    done = run(tmp_path, *argv)
    assert done.returncode == status, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), done.stderr
    assert never not in done.stderr and done.stdout == ""
    if name == "missing repository":
        assert lines[0].endswith("/new; add --init to create one"), lines
    assert tree(tmp_path) == before


def test_a_duplicate_user_is_one_line_without_the_hash(tmp_path):
    first = run(tmp_path, "backend", "create-user", "ops@acme.com")
    assert first.returncode == 0, first.stderr
    files = tree(tmp_path)
    again = run(tmp_path, "backend", "create-user", "OPS@acme.com")
    assert again.returncode == 1
    assert (
        again.stderr
        == "keepstone backend create-user: a user ops@acme.com already exists; nothing was changed\n"
    )
    assert "scrypt" not in again.stderr and "pbkdf2" not in again.stderr and again.stdout == ""
    assert tree(tmp_path) == files
    unknown = run(tmp_path, "backend", "create-user", "dev@acme.com", "--org", "no-such-cloud")
    assert unknown.returncode == 1 and "there is no organisation no-such-cloud" in unknown.stderr


def test_no_parser_abbreviates_and_every_command_has_examples():
    parser = build_parser()
    for path, p in subcommands(parser):
        assert p.allow_abbrev is False, path
        is_leaf = not any(a.__class__.__name__ == "_SubParsersAction" for a in p._actions)
        if path and (is_leaf or path == ("backend",)):
            assert "examples:" in p.format_help(), path  # from EXAMPLES, or the command's own epilog


def test_jira_commands_share_the_credential_options():
    parser = build_parser()
    commands = dict(subcommands(parser))
    for name in ("backup", "restore"):
        options = {o for a in commands[(name,)]._actions for o in a.option_strings}
        assert {"--site", "--email", "--token-env", "--token"} <= options, name


def test_version_names_the_repository_format(tmp_path):
    done = run(tmp_path, "--version")
    assert done.stdout.strip() == "keepstone 0.1.0 (repository format 1)"


def test_bash_completion_completes_commands_and_options(tmp_path):
    script = run(tmp_path, "completion", "bash").stdout
    probe = (
        script
        + 'COMP_WORDS=(keepstone ba); COMP_CWORD=1; _keepstone_complete; echo "${COMPREPLY[*]}"\n'
        + 'COMP_WORDS=(keepstone backup --repo x --in); COMP_CWORD=4; _keepstone_complete; echo "${COMPREPLY[*]}"\n'
        + 'COMP_WORDS=(keepstone backend create-user --o); COMP_CWORD=3; _keepstone_complete; echo "${COMPREPLY[*]}"\n'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=20)
    assert out.stdout.splitlines() == ["backend backup", "--include --init", "--org"], out.stderr
    zsh = run(tmp_path, "completion", "zsh").stdout
    assert (
        zsh.startswith("autoload -U +X bashcompinit") and "complete -F _keepstone_complete keepstone" in zsh
    )


def test_ls_into_a_closed_pipe_is_quiet_and_sizes_are_human(tmp_path):
    from backend.repository import Repository
    from backend.storage.local import LocalStorage

    repo = Repository.init(LocalStorage(tmp_path / "repo"), PASSWORD)
    w = repo.start_snapshot("ABC", "https://acme.example", time=None)
    for i in range(3000):  # more than a pipe buffer of `ls` lines
        w.add_json(f"issues/ABC-{i}", {"key": f"ABC-{i}", "text": "x" * 1500}, "issue")
    snapshot = w.commit()
    env = {**os.environ, "KEEPSTONE_REPO_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-c", f'{sys.executable} -m keepstone.cli ls {snapshot[:8]} --repo {tmp_path}/repo | head -1; '
         'echo "status ${PIPESTATUS[0]}" >&2'],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.startswith("issue") and "KiB" in done.stdout.splitlines()[0], done.stdout
    assert done.stderr == "status 141\n", done.stderr  # no BrokenPipeError, no traceback

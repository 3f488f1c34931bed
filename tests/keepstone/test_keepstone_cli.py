import subprocess
import sys


def test_keepstone_command_lists_its_subcommands():
    out = subprocess.run([sys.executable, "-m", "keepstone.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: keepstone" in out.stdout


def test_unknown_subcommand_is_a_clear_usage_error():
    out = subprocess.run([sys.executable, "-m", "keepstone.cli", "no-such"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice" in out.stderr

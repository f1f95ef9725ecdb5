"""`his-pacs-ws operators`: the console's people, managed from the shell like partner systems."""

from tests.soap.conftest import run_cli, unique


def test_operators_are_added_listed_and_refused_clearly(database_url, server):
    name = unique("op")

    def cli(*args, stdin=None):
        return run_cli("operators", *args, "--database-url", database_url, env=server.env, stdin=stdin)

    assert cli("add", name, "--role", "viewer").returncode == 2  # no password on the command line
    added = cli("add", name, "--role", "admin", "--password-stdin", stdin="a-long-password-1\n")
    assert added.returncode == 0 and f"operator {name} added (admin)" in added.stdout
    again = cli("add", name, "--role", "admin", "--password-stdin", stdin="a-long-password-1\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    short = cli("set-password", name, "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "12 characters" in short.stderr
    assert cli("disable", name).returncode == 0
    listed = cli("list").stdout
    row = next(line for line in listed.splitlines() if line.startswith(name))
    assert "admin" in row and "NO" in row and "a-long-password-1" not in listed
    assert cli("disable", "nobody-" + name).returncode == 1

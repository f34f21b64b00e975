"""Create N accounts with CREDITS each and one key per account; print the keys as a JSON list.

It drives imagegate's own admin CLI (`imagegate admin account create`, `admin key create`), all
in this one process: a process per command costs about 2.5 s of start-up, a command here 0.2 s.
The database is the one IMAGEGATE_* in the environment names, already migrated.

    python bench/accounts.py N CREDITS
"""

from __future__ import annotations

import json
import sys
from typing import Any

from typer.testing import CliRunner

from imagegate.cli.main import app

RUNNER = CliRunner()


def admin(*args: str) -> dict[str, Any]:
    """One `imagegate admin ... --json` command; its JSON answer."""
    result = RUNNER.invoke(app, ["admin", *args, "--json"])
    if result.exit_code != 0:
        sys.exit(f"imagegate admin {' '.join(args)} failed: {result.output}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def main() -> None:
    count, credits = int(sys.argv[1]), sys.argv[2]
    keys = []
    for n in range(count):
        account = admin("account", "create", "--name", f"bench-{n}", "--credits", credits)
        keys.append(admin("key", "create", "--account", account["id"])["key"])
    print(json.dumps(keys))


if __name__ == "__main__":
    main()

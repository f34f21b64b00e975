"""The `imagegate` command, shared by client and server.

Client commands run here: ``generate``, ``credits``, ``models``, ``task``, ``tasks``,
``cancel`` and ``usage``. Every other command (serve, worker, db, admin) belongs to the server
package and is handed to its CLI, argv untouched, when it is installed. This module imports the
standard library alone until a command runs.

Exit codes: 0 success; 1 any other error; 2 usage or configuration (no API key); 3 the task
failed; 4 the task was still running at --timeout; 5 no response (connection or timeout);
10 invalid_request; 11 invalid_api_key; 12 insufficient_credits; 13 ip_not_allowed;
14 model_not_found; 15 task_not_found (or another 404); 16 rate_limit_exceeded;
17 spend_limit_exceeded; 18 internal_error (or another 5xx); 19 upstream_error;
20 another error response; 130 interrupted (the task keeps running on the server).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagegate_client import Client, ImagegateError, OutputFormat, Task, Usage

CLIENT_COMMANDS = ("generate", "credits", "models", "task", "tasks", "cancel", "usage")
EXIT_CODES = {
    "TaskFailedError": 3, "WaitTimeoutError": 4, "APIConnectionError": 5,
    "InvalidRequestError": 10, "AuthenticationError": 11, "InsufficientCreditsError": 12,
    "IpNotAllowedError": 13, "ModelNotFoundError": 14, "NotFoundError": 15,
    "RateLimitError": 16, "SpendLimitError": 17, "InternalServerError": 18, "UpstreamError": 19,
    "APIError": 20,
}  # fmt: skip
SPEEDS = ("TURBO", "BALANCED", "QUALITY")
SIZES = ("1:1", "3:4", "9:16", "4:3", "16:9")
STATUSES = ("pending", "processing", "completed", "failed")
GROUPS = ("day", "key", "speed")
USAGE_COLUMNS = (
    ("tasks", "tasks_created"), ("completed", "tasks_completed"), ("failed", "tasks_failed"),
    ("charged", "credits_charged"), ("refunded", "credits_refunded"), ("net", "credits_net"),
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run ``imagegate ARGS`` (default: sys.argv); returns the exit code. A server command
    reads sys.argv itself and exits with its own code."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in CLIENT_COMMANDS:
        return _run(parser().parse_args(args))
    if not args or args[0] in ("-h", "--help"):
        print(parser().format_help() + _server_help())
        return 0
    if importlib.util.find_spec("imagegate") is None:
        print(
            f"error: '{args[0]}' is not a client command ({', '.join(CLIENT_COMMANDS)}), and the"
            " imagegate server package, which has the others, is not installed",
            file=sys.stderr,
        )
        return 2
    from imagegate.cli.main import main as server_main

    server_main()  # reads sys.argv; exits with the server command's code
    return 0


def parser() -> argparse.ArgumentParser:
    """The client commands' argument parser."""
    root = argparse.ArgumentParser(
        prog="imagegate",
        description="imagegate: text-to-image API gateway. Client commands talk to a server at "
        "IMAGEGATE_BASE_URL with the key in IMAGEGATE_API_KEY (or --base-url, --api-key).",
        epilog="Exit codes are listed in `python -m pydoc imagegate_client.cli`.",
    )
    commands = root.add_subparsers(dest="command", title="client commands", metavar="COMMAND")
    generate = commands.add_parser("generate", help="Generate an image and save it.")
    generate.add_argument("prompt", help="What to draw; put text to render in quotes.")
    generate.add_argument("--size", choices=SIZES, default="1:1", help="default: %(default)s")
    generate.add_argument("--speed", choices=SPEEDS, default="BALANCED", help="default: BALANCED")
    generate.add_argument("--format", choices=("jpeg", "png"), help="default: from -o, else jpeg")
    generate.add_argument("-o", "--output", type=Path, help="default: TASK_ID.jpg (or .png)")
    generate.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait (default: %(default)g)"
    )
    credits = commands.add_parser("credits", help="Show the account's credit balance.")
    models = commands.add_parser(
        "models", help="List the models this key may use, with the account's prices."
    )
    models.add_argument("--json", action="store_true", help="print a JSON array of models")
    task = commands.add_parser("task", help="Show a task: status, image URLs or error.")
    task.add_argument("task_id")
    task.add_argument("--json", action="store_true", help="print the task object as JSON")
    tasks = commands.add_parser("tasks", help="List the account's tasks, newest first.")
    tasks.add_argument("--status", choices=STATUSES, help="only tasks with this status")
    tasks.add_argument(
        "--limit", type=_positive, default=20, help="at most this many (default: %(default)s)"
    )
    tasks.add_argument("--json", action="store_true", help="print a JSON array of task objects")
    cancel = commands.add_parser("cancel", help="Cancel a pending or processing task (refunded).")
    cancel.add_argument("task_id")
    cancel.add_argument("--json", action="store_true", help="print the task object as JSON")
    usage = commands.add_parser("usage", help="Show tasks and credits by day, key or speed.")
    usage.add_argument(
        "--from",
        dest="from_",
        type=_day,
        help="first UTC day, YYYY-MM-DD (default: 29 days before --to)",
    )
    usage.add_argument("--to", type=_day, help="last UTC day, YYYY-MM-DD (default: today)")
    usage.add_argument("--group-by", choices=GROUPS, default="day", help="default: %(default)s")
    usage.add_argument("--json", action="store_true", help="print the usage object as JSON")
    for command in (generate, credits, models, task, tasks, cancel, usage):
        command.add_argument("--base-url", help="default: IMAGEGATE_BASE_URL")
        command.add_argument("--api-key", help="default: IMAGEGATE_API_KEY")
    return root


def _server_help() -> str:
    if importlib.util.find_spec("imagegate") is None:
        return "\nserver commands: not installed (pip install imagegate)"
    import typer.main

    from imagegate.cli.main import app

    commands = getattr(typer.main.get_command(app), "commands", {})
    lines = [f"  {name:<10} {cmd.get_short_help_str(60)}" for name, cmd in sorted(commands.items())]
    return "\nserver commands (imagegate COMMAND --help for more):\n" + "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from imagegate_client import ImagegateError

    try:
        client = _client(args)
    except ImagegateError:  # no API key: a usage error, not an answer of the API
        print("error: no API key: pass --api-key or set IMAGEGATE_API_KEY", file=sys.stderr)
        return 2
    command = {
        "generate": _generate, "credits": _credits, "models": _models, "task": _task,
        "tasks": _tasks, "cancel": _cancel, "usage": _usage,
    }[args.command]  # fmt: skip
    try:
        with client:
            return command(client, args)
    except ImagegateError as error:
        print(f"error: {_describe(error)}", file=sys.stderr)
        return _exit_code(error)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _client(args: argparse.Namespace) -> Client:
    from imagegate_client import Client

    return Client(api_key=args.api_key, base_url=args.base_url)


def _generate(client: Client, args: argparse.Namespace) -> int:
    from imagegate_client import PRICES
    from imagegate_client._base import finished
    from imagegate_client._models import EXTENSIONS
    from imagegate_client._progress import Progress

    output_format: OutputFormat = args.format or _format_of(args.output)
    task_id = client.create(
        args.prompt, size=args.size, rendering_speed=args.speed, output_format=output_format
    )
    try:
        with Progress(sys.stderr, task_id) as progress:
            task = finished(_follow(client, task_id, args.timeout, progress.update))
        path = client.download(task, args.output or Path(f"{task_id}.{EXTENSIONS[output_format]}"))
    except KeyboardInterrupt:
        print(f"\ninterrupted; the task keeps running: imagegate task {task_id}", file=sys.stderr)
        return 130
    print(f"{path}  ({PRICES[args.speed]} credits)")
    return 0


def _follow(client: Client, task_id: str, timeout: float, show: Callable[[Task], None]) -> Task:
    """The task once final, each status shown as it changes (server-sent events); long-polled
    instead where the events fail (a server without them)."""
    from imagegate_client import ImagegateError, WaitTimeoutError

    started = time.monotonic()
    try:
        for task in client.events(task_id, timeout=timeout):
            show(task)
            if task.finished:
                return task
    except WaitTimeoutError:
        raise
    except ImagegateError:
        pass  # wait() raises the error again if it is not about the event stream
    remaining = max(0.0, timeout - (time.monotonic() - started))
    try:
        return client.wait(task_id, timeout=remaining, on_poll=show)
    except WaitTimeoutError as error:
        raise WaitTimeoutError(task_id, error.task, timeout) from error


def _format_of(output: Path | None) -> OutputFormat:
    suffix = output.suffix.lower() if output else ""
    return "png" if suffix == ".png" else "jpeg"


def _credits(client: Client, _args: argparse.Namespace) -> int:
    print(f"{client.credits().credits} credits")
    return 0


def _models(client: Client, args: argparse.Namespace) -> int:
    models = client.models()
    if args.json:
        print(json.dumps([model.model_dump(mode="json") for model in models], indent=2))
        return 0
    names = max((len(model.name) for model in models), default=0)
    titles = max((len(model.title) for model in models), default=0)
    for model in models:
        prices = "  ".join(f"{speed} {model.prices[speed]}" for speed in model.rendering_speeds)
        print(f"{model.name:<{names}}  {model.title:<{titles}}  {prices}")
    if not models:
        print("no models", file=sys.stderr)
    return 0


def _task(client: Client, args: argparse.Namespace) -> int:
    return _show(client.get(args.task_id), as_json=args.json)


def _cancel(client: Client, args: argparse.Namespace) -> int:
    return _show(client.cancel(args.task_id), as_json=args.json)


def _show(task: Task, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(task.model_dump(exclude_none=True), indent=2))
        return 0
    rows = [("task", task.id), ("status", task.status), ("model", task.model)]
    rows.append(("created", _time(task.created_at)))
    if task.completed_at is not None:
        rows.append(("completed", _time(task.completed_at)))
    rows += [("url", url) for url in task.urls]
    if task.error is not None:
        rows.append(("error", f"{task.error.code}: {task.error.message}"))
    print("\n".join(f"{name + ':':<11}{value}" for name, value in rows))
    return 0


def _tasks(client: Client, args: argparse.Namespace) -> int:
    listed = client.tasks(status=args.status, page_size=min(args.limit, 100))
    tasks = list(itertools.islice(listed, args.limit))
    if args.json:
        print(json.dumps([task.model_dump(exclude_none=True) for task in tasks], indent=2))
        return 0
    for task in tasks:
        print(f"{task.id}  {task.status:<10}  {_time(task.created_at)}  {task.model}")
    if not tasks:
        print("no tasks", file=sys.stderr)
    return 0


def _usage(client: Client, args: argparse.Namespace) -> int:
    usage = client.usage(from_=args.from_, to=args.to, group_by=args.group_by)
    if args.json:
        print(json.dumps(usage.model_dump(mode="json", by_alias=True), indent=2))
    else:
        print(_usage_table(usage))
    return 0


def _usage_table(usage: Usage) -> str:
    """The usage's rows and total, aligned; numbers right-aligned."""
    header = [usage.group_by, *(title for title, _ in USAGE_COLUMNS)]
    rows = [header]
    for group, counts in [*((row.group, row) for row in usage.rows), ("total", usage.total)]:
        rows.append([group, *(str(getattr(counts, field)) for _, field in USAGE_COLUMNS)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [f"{usage.from_} to {usage.to}, by {usage.group_by}"]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _positive(value: str) -> int:
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise argparse.ArgumentTypeError(f"not a whole number from 1: {value!r}")
    return int(value)


def _day(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day as YYYY-MM-DD: {value!r}") from None


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _describe(error: ImagegateError) -> str:
    """``code: message`` on one line."""
    from imagegate_client import APIConnectionError, APIError, TaskFailedError, WaitTimeoutError

    if isinstance(error, APIError):
        code, message = error.code or f"http_{error.status_code}", error.message
    elif isinstance(error, TaskFailedError):
        code, message = error.code, f"{error.message} (task {error.task.id})"
    elif isinstance(error, WaitTimeoutError):
        status = error.task.status if error.task else "unfinished"
        message = f"task {error.task_id} is still {status} after {error.timeout:g}s; it keeps"
        code, message = "wait_timeout", f"{message} running: imagegate task {error.task_id}"
    elif isinstance(error, APIConnectionError):
        code, message = "connection_error", str(error)
    else:
        code, message = "error", str(error)
    return f"{code}: {' '.join(message.split())}"


def _exit_code(error: ImagegateError) -> int:
    names = (cls.__name__ for cls in type(error).__mro__)
    return next((EXIT_CODES[name] for name in names if name in EXIT_CODES), 1)

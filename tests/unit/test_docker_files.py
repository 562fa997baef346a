"""The container files agree with each other and with the node: docker/compose.yaml parses, its
services are health-checked and wired to each other, every BREASTNODE_* variable it sets (or
shows as an example) is a real setting that validates on top of docker/config.toml, and the
Dockerfile installs and starts the node as `make run` does, as a non-root user.

No docker and no network: the files are read and checked with the node's own settings loader.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from node.config import ENV_PREFIX, PeerSettings, Settings, load_settings
from node.errors import ConfigError
from tests.support.helpers import IN_CI, REPO

DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
CONFIG = DOCKER / "config.toml"
MAKEFILE = REPO / "Makefile"
IMAGE_CONFIG = "/etc/breastnode/config.toml"
EXAMPLE = re.compile(rf"^\s*#\s*({ENV_PREFIX}[A-Z0-9_]+):\s*(.+?)\s*$")


def _yaml() -> ModuleType:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        message = "PyYAML is not installed (it reads docker/compose.yaml in this test)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = _yaml().safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    assert set(found) == {"postgres", "node", "orthanc"}
    return found


def node_environment(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The node's BREASTNODE_* variables as compose passes them (strings)."""
    environment = services["node"]["environment"]
    assert isinstance(environment, dict), "node environment: use the mapping form"
    return {k: str(v) for k, v in environment.items() if k.startswith(ENV_PREFIX)}


def example_environment() -> dict[str, str]:
    """The commented-out BREASTNODE_* examples, with their values read as YAML would."""
    yaml = _yaml()
    found = {}
    for line in COMPOSE.read_text(encoding="utf-8").splitlines():
        match = EXAMPLE.match(line)
        if match:
            found[match[1]] = str(yaml.safe_load(match[2]))
    return found


def settings_with(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> Settings:
    """docker/config.toml with ``environment`` on top, through the node's own loader."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings(CONFIG)


def assert_applied(settings: Settings, environment: dict[str, str]) -> None:
    """Each variable names an existing setting and that setting now has its value (pydantic
    ignores a variable whose section does not exist, so this is checked here)."""
    dumped = settings.model_dump(mode="json")
    for name, value in environment.items():
        path = name.removeprefix(ENV_PREFIX).lower().split("__")
        if path == ["peers"]:
            given = [PeerSettings(**peer).model_dump(mode="json") for peer in json.loads(value)]
            assert dumped["peers"] == given, f"{name} not applied"
            continue
        assert len(path) == 2, f"{name}: not BREASTNODE_<SECTION>__<KEY>"
        section, key = path
        assert section in dumped, f"{name}: no section [{section}]"
        assert key in dumped[section], f"{name}: no key {key} in [{section}]"
        actual = dumped[section][key]
        if isinstance(actual, list | dict):
            assert actual == json.loads(value), f"{name} not applied"
        elif isinstance(actual, float):
            assert actual == float(value), f"{name} not applied"
        else:
            assert str(actual) == value, f"{name} not applied"


# --- compose.yaml ---------------------------------------------------------------------------


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, name
        assert len(test) > 1, name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert any("/system" in part for part in services["orthanc"]["healthcheck"]["test"])


def test_node_healthcheck_asks_healthz_on_the_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = load_settings(CONFIG)
    command = " ".join(services["node"]["healthcheck"]["test"])
    assert f"127.0.0.1:{settings.metrics.port}/healthz" in command
    assert f"{settings.metrics.port}:{settings.metrics.port}" in services["node"]["ports"]
    assert f"{settings.node.port}:{settings.node.port}" in services["node"]["ports"]


def test_node_waits_for_healthy_postgres_and_orthanc(services: dict[str, dict[str, Any]]) -> None:
    depends = services["node"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["orthanc"]["condition"] == "service_healthy"


def test_node_environment_applies_on_top_of_the_container_config(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = node_environment(services)
    assert f"{ENV_PREFIX}STORAGE__DATABASE_URL" in environment
    settings = settings_with(monkeypatch, environment)
    assert_applied(settings, environment)
    # The rest of docker/config.toml still holds.
    assert settings.storage_root == Path("/var/lib/breastnode")
    assert [p.name for p in settings.peers] == ["orthanc"]


def test_commented_examples_are_real_settings_that_validate(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = example_environment()
    assert f"{ENV_PREFIX}PEERS" in examples
    environment = node_environment(services) | examples
    assert_applied(settings_with(monkeypatch, environment), environment)


def test_a_misspelt_variable_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: the loader refuses an unknown section."""
    environment = {f"{ENV_PREFIX}STORAGES__DATABASE_URL": "postgresql://x@postgres/x"}
    with pytest.raises(ConfigError, match="no such section"):
        settings_with(monkeypatch, environment)


def test_database_url_points_at_the_compose_postgres(services: dict[str, dict[str, Any]]) -> None:
    url = make_url(node_environment(services)[f"{ENV_PREFIX}STORAGE__DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert url.get_backend_name() == "postgresql"
    assert url.host == "postgres"
    assert url.port in {None, 5432}
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]


def test_orthanc_knows_the_node_as_it_is_configured(services: dict[str, dict[str, Any]]) -> None:
    settings = load_settings(CONFIG)
    modalities = json.loads(services["orthanc"]["environment"]["ORTHANC__DICOM_MODALITIES"])
    ae_title, host, port = modalities["breastnode"]
    assert ae_title == settings.node.ae_title
    assert host == "node"
    assert port == settings.node.port


def test_the_node_knows_orthanc_as_it_is_configured(services: dict[str, dict[str, Any]]) -> None:
    settings = load_settings(CONFIG)
    orthanc = services["orthanc"]["environment"]
    peer = settings.peer("orthanc")
    assert peer.ae_title == orthanc["ORTHANC__DICOM_AET"]
    assert peer.port == int(orthanc.get("ORTHANC__DICOM_PORT", 4242))
    assert peer.host == "orthanc"
    assert settings.routing.result_destinations == ["orthanc"]


def test_gpu_stanza_is_valid_once_uncommented(services: dict[str, dict[str, Any]]) -> None:
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# deploy:")
    column = lines[start].index("#")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#") or line.index("#") != column:
            break
        block.append(line[column + 2 :])
    stanza = _yaml().safe_load(textwrap.dedent("\n".join(block)))
    device = stanza["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    # Uncommented where it stands, it belongs to the node service.
    node_key = next(line for line in lines if line.strip().startswith("stop_grace_period:"))
    assert column == len(node_key) - len(node_key.lstrip())
    assert "deploy" not in services["node"]


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def breastnode_commands(shell: str) -> list[list[str]]:
    """The breastnode sub-commands of a shell command line, in order, without --config."""
    commands = []
    for part in re.split(r"&&|\n", shell):
        words = shlex.split(part.replace("exec ", ""))
        words = [w.split("/")[-1] if w.endswith("/breastnode") else w for w in words]
        if not words or words[0] != "breastnode":
            continue
        if "--config" in words:
            at = words.index("--config")
            del words[at : at + 2]
        commands.append(words[1:])
    return commands


def makefile_run_recipe() -> str:
    recipe, in_run = [], False
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("run:"):
            in_run = True
            continue
        if in_run:
            if not line.startswith("\t"):
                break
            recipe.append(line.strip().replace("$(BIN)/breastnode", "breastnode"))
    return "\n".join(recipe)


def test_dockerfile_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER instruction: the node would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    run = " ".join(args for keyword, args in instructions if keyword == "RUN")
    if user.isdigit():
        assert f"--uid {user}" in run, "the numeric USER is not the user the image creates"
    last_user = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    last_cmd = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "CMD")
    assert last_user < last_cmd


def test_dockerfile_starts_the_node_as_make_run_does() -> None:
    instructions = dockerfile_instructions()
    cmd = json.loads(next(args for keyword, args in instructions if keyword == "CMD"))
    assert cmd[:2] == ["sh", "-c"]
    expected = [["models", "init-demo", "--if-missing"], ["serve"]]
    assert breastnode_commands(makefile_run_recipe()) == expected
    assert breastnode_commands(cmd[2]) == expected
    assert f"--config {IMAGE_CONFIG}" in cmd[2]
    assert "exec breastnode" in cmd[2], "serve must be the container's main process"


def test_dockerfile_installs_as_make_venv_does() -> None:
    instructions = dockerfile_instructions()
    run = " ".join(args for keyword, args in instructions if keyword == "RUN")
    makefile = MAKEFILE.read_text(encoding="utf-8")
    assert "-m venv" in makefile and "-m venv" in run
    assert "pip install --quiet -e ." in makefile
    assert re.search(r"pip install (--no-cache-dir )?\.(\s|$)", run)
    copies = [args for keyword, args in instructions if keyword == "COPY"]
    assert f"docker/config.toml {IMAGE_CONFIG}" in copies
    for package in ("node", "storage", "models"):
        assert f"{package} ./{package}" in copies


def test_dockerfile_base_image_is_a_build_argument() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "ARG" and instructions[0][1].startswith("BASE_IMAGE=")
    assert ("FROM", "${BASE_IMAGE}") in instructions


def test_dockerfile_healthcheck_and_ports_match_the_config() -> None:
    settings = load_settings(CONFIG)
    instructions = dockerfile_instructions()
    health = next(args for keyword, args in instructions if keyword == "HEALTHCHECK")
    assert f"http://127.0.0.1:{settings.metrics.port}/healthz" in health
    assert settings.metrics.host == "0.0.0.0"
    exposed = " ".join(args for keyword, args in instructions if keyword == "EXPOSE").split()
    assert {str(settings.node.port), str(settings.metrics.port)} <= set(exposed)
    volumes = [json.loads(args) for keyword, args in instructions if keyword == "VOLUME"]
    assert [str(settings.storage_root)] in volumes


def test_commands_in_the_container_read_the_node_configuration() -> None:
    """`docker compose exec node breastnode studies` reads ./config.toml: the working
    directory must be the configuration's folder."""
    workdirs = [args for keyword, args in dockerfile_instructions() if keyword == "WORKDIR"]
    assert Path(workdirs[-1]) / "config.toml" == Path(IMAGE_CONFIG)

"""The Pulumi CLI is the first consumer of Pulumi.yaml and every Pulumi.<stack>.yaml: each is checked
here the way the CLI reads it (Go's yaml.v3, the project schema, the stack value typing, the
PULUMI_CONFIG the program receives), not the way our own code or PyYAML would."""

import json

import pytest
import yaml

from model.config import KNOWN_KEYS, NAMESPACE, load_settings
from tests.consumers import go_yaml
from tests.consumers.pulumi_cli import (
    declared_config,
    default_value,
    language_host_environment,
    project_problems,
    stack_problems,
    stack_value,
)
from tests.consumers.stack_files import (
    EXAMPLE_STACK_FILE,
    PROJECT_FILE,
    STACK_FILES,
    deploy_stack_file,
    load_project,
    load_stack,
    stack_name,
)

PROJECT_FILES = [PROJECT_FILE, *STACK_FILES]


def test_the_repository_ships_an_example_stack():
    """The README calls Pulumi.dev.yaml a complete example: the checks below must have one to read."""
    assert EXAMPLE_STACK_FILE in STACK_FILES


# --- YAML as yaml.v3 reads it -------------------------------------------------------------------


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: p.name)
def test_every_pulumi_file_parses_as_the_cli_parses_yaml(path):
    """`pulumi up` refuses to start on a file yaml.v3 cannot load, before reading any value."""
    assert isinstance(go_yaml.load(path.read_text()), dict)


def test_a_duplicate_key_is_refused_as_the_cli_refuses_it():
    """PyYAML keeps the last of two equal keys, so a second `domain:` would silently win there."""
    text = "config:\n  secure-qdrant:domain: a.example.com\n  secure-qdrant:domain: b.example.com\n"

    with pytest.raises(yaml.constructor.ConstructorError, match="already defined at line 2"):
        go_yaml.load(text)


def test_a_colon_space_inside_a_plain_scalar_is_refused():
    """The description that kept the CLI from loading the project (issue 8)."""
    text = (
        "name: secure-qdrant\n"
        "description: A hardened, self-hosted Qdrant on AWS: TLS-only, authenticated.\n"
    )

    with pytest.raises(yaml.scanner.ScannerError, match="mapping values are not allowed"):
        go_yaml.load(text)


def test_scalars_resolve_as_yaml_v3_resolves_them():
    """yaml.v3 is YAML 1.2-like: `yes` is a string and a date stays text; PyYAML would hand the
    program True and a datetime.date."""
    loaded = go_yaml.load("a: yes\nb: 2027-06-30\nc: 0o17\nd: True\ne: 1_000\nf: '20'\ng:\n")

    assert loaded == {
        "a": "yes",
        "b": "2027-06-30",
        "c": 15,
        "d": True,
        "e": 1000,
        "f": "20",
        "g": None,
    }


# --- Pulumi.yaml against the project schema -------------------------------------------------------


def test_project_file_follows_the_project_schema():
    assert project_problems(load_project()) == []


def test_project_name_is_the_config_namespace_the_program_reads():
    """Stack keys are `<project name>:key`; another name would leave every value unread."""
    assert load_project()["name"] == NAMESPACE


def test_the_project_declares_exactly_the_keys_the_program_reads():
    """A declared key the program ignores is a setting that silently does nothing; a key read but
    not declared (`adminCidrs` and `tokens` were) is missing from `pulumi config`'s list of what a
    stack can set, and its default from every stack that leaves it unset."""
    assert sorted(declared_config(load_project())) == sorted(KNOWN_KEYS)


BASE = {"name": "p", "runtime": "python"}
BAD_PROJECTS = {
    "no-runtime": ({"name": "p"}, "runtime:"),
    "no-name": ({"runtime": "python"}, "name:"),
    "runtime-unknown-field": (
        {"name": "p", "runtime": {"name": "python", "option": {}}},
        "'option'",
    ),
    "description-not-string": ({**BASE, "description": ["x"]}, "description: must be a string"),
    "unknown-type": ({**BASE, "config": {"k": {"type": "number"}}}, "config.k: type 'number'"),
    "array-without-items": (
        {**BASE, "config": {"k": {"type": "array"}}},
        "config.k: declares an array",
    ),
    "misspelt-property": (
        {**BASE, "config": {"k": {"type": "string", "defualt": "x"}}},
        "unknown property 'defualt'",
    ),
    "integer-default-not-integer": (
        {**BASE, "config": {"k": {"type": "integer", "default": "twenty"}}},
        "not of the expected type 'integer'",
    ),
    "boolean-default-yes": (
        {**BASE, "config": {"k": {"type": "boolean", "default": "yes"}}},
        "not of the expected type 'boolean'",
    ),
    "array-default-wrong-items": (
        {**BASE, "config": {"k": {"type": "array", "items": {"type": "string"}, "default": [1]}}},
        "not of the expected type 'array<string>'",
    ),
    "default-and-value": (
        {**BASE, "config": {"k": {"default": "a", "value": "b"}}},
        "both a 'default' and 'value'",
    ),
    "foreign-key-typed": (
        {**BASE, "config": {"aws:region": {"type": "string"}}},
        "config.aws:region: another namespace",
    ),
}


@pytest.mark.parametrize(("bad", "problem"), BAD_PROJECTS.values(), ids=BAD_PROJECTS.keys())
def test_project_schema_violations_are_reported(bad, problem):
    """Each rule the CLI enforces on load is enforced here too, so a bad edit fails this module."""
    problems = project_problems(bad)

    assert any(problem in found for found in problems), problems


# --- Stack values as the CLI types them -----------------------------------------------------------


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_value_has_its_declared_type(path):
    """`pulumi up` stops on a stack value that does not convert to the type Pulumi.yaml declares."""
    assert stack_problems(load_project(), load_stack(path), stack_name(path)) == []


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_project_key_in_a_stack_is_declared_or_read(path):
    """A misspelt key would otherwise be carried along and never read."""
    known = set(declared_config(load_project())) | KNOWN_KEYS
    config = load_stack(path).get("config") or {}
    keys = {key.split(":", 1)[1] for key in config if key.startswith(f"{NAMESPACE}:")}

    assert keys - known == set()


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_a_stack_file_restates_no_project_default(path):
    """A default copied into the example stack is copied on into every stack made from it, and
    stays pinned there when the project moves its default on (past a security fix in
    `qdrantVersion`, say)."""
    declared = declared_config(load_project())
    config = load_stack(path).get("config") or {}
    restated = [
        key
        for key, raw in config.items()
        if key.startswith(f"{NAMESPACE}:")
        and "default" in declared.get(key.split(":", 1)[1], {})
        and stack_value(raw).text == default_value(declared[key.split(":", 1)[1]]["default"])
    ]

    assert restated == []


DECLARED = {
    "name": "p",
    "runtime": "python",
    "config": {
        "size": {"type": "integer", "default": 20},
        "flag": {"type": "boolean", "default": False},
        "domain": {"type": "string"},
    },
}
STACK_TYPING = {
    "integer-as-number": ("p:size: 30", True),
    "integer-quoted": ('p:size: "30"', True),
    "integer-whole-float": ("p:size: 30.0", True),
    "integer-word": ("p:size: thirty", False),
    "integer-fraction": ("p:size: 30.5", False),
    "boolean-unquoted-True": ("p:flag: True", True),
    "boolean-quoted-True": ('p:flag: "True"', False),
    "boolean-yes": ("p:flag: yes", False),
    "string-from-number": ("p:domain: 5", True),
    "string-from-list": ("p:domain: [a]", False),
}


@pytest.mark.parametrize(("line", "accepted"), STACK_TYPING.values(), ids=STACK_TYPING.keys())
def test_stack_values_are_typed_as_the_cli_types_them(line, accepted):
    """The CLI checks a scalar through its string form: "30" passes as an integer (strconv.Atoi),
    "True" in quotes does not pass as a boolean, anything passes as a string."""
    stack_file = {"config": {"p:domain": "a.example.com", **go_yaml.load(line)}}
    problems = stack_problems(DECLARED, stack_file, "s")

    assert (problems == []) is accepted, problems


def test_a_declared_key_without_default_must_be_set_by_the_stack():
    problems = stack_problems(DECLARED, {"config": {}}, "s")

    assert problems == ["Stack 's' is missing configuration value 'domain'"]


def test_the_program_receives_stack_values_and_project_defaults_as_strings():
    """What the language host puts in PULUMI_CONFIG: every value a string, lists as JSON, a default
    for every declared key the stack leaves unset."""
    stack_file = go_yaml.load(
        "config:\n  aws:region: eu-central-1\n  p:domain: a.example.com\n"
        "  p:cidrs: [10.0.0.0/8]\n  p:size: 30\n"
    )

    environment = language_host_environment(DECLARED, stack_file)

    assert json.loads(environment["PULUMI_CONFIG"]) == {
        "aws:region": "eu-central-1",
        "p:domain": "a.example.com",
        "p:cidrs": '["10.0.0.0/8"]',
        "p:size": "30",
        "p:flag": "false",
    }
    assert environment["PULUMI_CONFIG_SECRET_KEYS"] == "[]"


# --- The example stack, run as `pulumi up` would run it -------------------------------------------


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_stack_file_deploys_with_exactly_its_values(path):
    """The program gets its config only through PULUMI_CONFIG built from the files, as under the CLI,
    and registers what the file says: the domain, SSH networks, one token per named caller, the
    data volume size, the instance type and the DNS zone."""
    environment = language_host_environment(load_project(), load_stack(path))
    config = {
        key.split(":", 1)[1]: value
        for key, value in json.loads(environment["PULUMI_CONFIG"]).items()
        if key.startswith(f"{NAMESPACE}:")
    }
    settings = load_settings(config)

    deployment = deploy_stack_file(path)

    outputs = {name: exported.value for name, exported in deployment.outputs.items()}
    assert outputs["restUrl"] == f"https://{config['domain']}"
    assert outputs["adminCidrs"] == json.loads(config.get("adminCidrs", "[]"))
    token_names = [token["name"] for token in json.loads(config.get("tokens", "[]"))]
    assert sorted(outputs["tokens"]) == sorted(token_names)
    assert sorted(outputs["tokenScopes"]) == sorted(token_names)
    assert deployment.one("aws:ebs/volume:Volume").inputs["size"] == int(config["dataVolumeSizeGb"])
    assert (
        deployment.one("aws:ec2/instance:Instance").inputs["instanceType"] == config["instanceType"]
    )
    assert config["acmeEmail"] in deployment.host_document
    zones = [
        args["name"] for token, args in deployment.calls if token == "aws:route53/getZone:getZone"
    ]
    assert zones == ([settings.hosted_zone] if settings.hosted_zone else [])


def test_project_defaults_are_the_programs_own_defaults():
    """Pulumi.yaml's defaults are what the program receives for every unset key, and the README
    documents the program's: one value each, or a default changed in one place silently differs."""
    required = {"domain": "qdrant.example.com", "acmeEmail": "ops@example.com"}
    defaults = {
        key: default_value(declaration["default"])
        for key, declaration in declared_config(load_project()).items()
        if "default" in declaration
    }

    assert load_settings({**required, **defaults}) == load_settings(required)

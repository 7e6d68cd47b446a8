"""The master and read-only API keys: random, secret in state, SecureString in SSM, never in user data.

Rotation keeps the host: the master key lives in two slots that take turns, so the key a rotation
replaces is still known (it is the other slot's unchanged value) and is stored as the previous key,
with the time until which the host keeps it as Qdrant's `alt_api_key`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_random as random

# Qdrant warns below 32 bytes; 48 alphanumerics carry about 285 bits.
API_KEY_LENGTH = 48
API_KEY = "api-key"
READ_ONLY_API_KEY = "read-only-api-key"
PREVIOUS_API_KEY = "previous-api-key"
# The slot an odd version's master key is generated in keeps the name every earlier release gave
# the one master key, so a stack at an odd version keeps its key when it moves to this release.
ODD_SLOT = API_KEY
EVEN_SLOT = f"{API_KEY}-even"
SECONDS_PER_HOUR = 3600


# The rotation clock, a pulumi-command `local.Command`: the same text on every machine (the
# provider runs it with `/bin/sh -c`; no path of the deployer's checkout, venv or home in it), so a
# deploy from another checkout, machine or CI runner registers the same inputs.
# - `create` runs only when the clock is created or replaced: `triggers` are replace-on-change (the
#   SDK registers it with `replace_on_changes=["triggers[*]"]`, pulumi-command's
#   `provider/pkg/provider/common/inputs.go` tags them `provider:"replaceOnChanges"`), and the
#   replacement's create runs with the program's inputs.
# - Any other change of inputs is an in-place Update, which runs `update` if set and `create`
#   otherwise (`provider/pkg/provider/local/commandController.go`; the v1.2.1 docs of `create`:
#   "If an `update` command isn't provided, then `create` will also be run when the resource's
#   inputs are modified"). `update` therefore prints the time `create` recorded: the provider hands
#   it the previous stdout as PULUMI_COMMAND_STDOUT (`addPreviousOutputInEnv`, default true,
#   `local/commandOutputs.go`). It fails rather than print nothing, so a lost value stops the
#   deploy instead of restarting the window.
# No `ignore_changes`: Pulumi keeps an ignored input's old value even when the resource is replaced
# (the engine copies old inputs into the goal state, pulumi/pulumi#2657; "Uses the serialized value
# from the stack state for any later previews or updates"), and drops an ignored input the old
# state lacks. Ignoring `create` would keep a stack's old absolute-path command for its next
# rotation, on whatever machine runs it; ignoring `update` would drop it on the first deploy of
# this release, which would then re-run `create` and restart the window.
ROTATION_CLOCK_CREATE = "date +%s"
ROTATION_CLOCK_UPDATE = 'printf "%s" "${PULUMI_COMMAND_STDOUT:?no recorded rotation time}"'


def slot_versions(version: int) -> dict[str, int]:
    """The version each slot's key was generated for: a bump by one regenerates only the slot that
    becomes current, so the other still holds the key just replaced."""
    odd = version if version % 2 else version - 1
    even = version - 1 if version % 2 else version
    return {ODD_SLOT: odd, EVEN_SLOT: even}


def current_slot(version: int) -> str:
    return ODD_SLOT if version % 2 else EVEN_SLOT


def grace_end_text(valid_until: int) -> str:
    """The `keyGraceEndsAt` output: when the previous master key stops working ("" if none)."""
    if not valid_until:
        return ""
    return dt.datetime.fromtimestamp(valid_until, dt.UTC).isoformat().replace("+00:00", "Z")


def previous_key_document(previous_key: str, valid_until: int) -> str:
    """The previous-key parameter's value: the key, and the Unix time after which the host drops it
    (0: there is no previous key to keep)."""
    return json.dumps({"apiKey": previous_key, "validUntil": valid_until})


@dataclass
class ApiKeysArgs:
    parameter_prefix: str
    """SSM path under which the keys are stored, e.g. `/secure-qdrant/prod`."""
    version: int
    """Bumping it by one generates new keys (rotation); every token is re-minted from the new master
    key, and the replaced master key stays valid for `grace_hours`."""
    grace_hours: int

    def parameter_name(self, kind: str) -> str:
        return f"{self.parameter_prefix}/{kind}"


class ApiKeys(pulumi.ComponentResource):
    """The keys, each stored as an SSM SecureString for the VM to fetch, plus the previous master key."""

    api_key: pulumi.Output[str]
    read_only_api_key: pulumi.Output[str]
    api_key_parameter: pulumi.Output[str]
    grace_ends_at: pulumi.Output[int]
    """Unix time at which the previous master key stops working; 0 before the first rotation."""
    parameter_arns: pulumi.Output[list[str]]
    parameters: list[aws.ssm.Parameter]

    def __init__(
        self, name: str, args: ApiKeysArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-qdrant:api_keys:ApiKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        slots = {
            slot: self._password(f"{name}-{slot}", version, child)
            for slot, version in slot_versions(args.version).items()
        }
        current = current_slot(args.version)
        [previous] = [slot for slot in slots if slot != current]
        read_only = self._password(f"{name}-{READ_ONLY_API_KEY}", args.version, child)
        self.grace_ends_at = self._grace_end(name, args, child)
        previous_parameter = self._parameter(
            name,
            PREVIOUS_API_KEY,
            args,
            pulumi.Output.all(slots[previous].result, self.grace_ends_at).apply(
                lambda values: previous_key_document(values[0], values[1])
            ),
            child,
        )
        # After the previous key: a host reading between the two updates finds the new key only
        # together with the one it replaces, so the old credentials never drop out early.
        master_parameter = self._parameter(
            name,
            API_KEY,
            args,
            slots[current].result,
            child.merge(pulumi.ResourceOptions(depends_on=[previous_parameter])),
        )
        read_only_parameter = self._parameter(
            name, READ_ONLY_API_KEY, args, read_only.result, child
        )
        self.api_key = slots[current].result
        self.read_only_api_key = read_only.result
        # Known before deployment, so the VM's user data can name them without waiting on AWS.
        self.api_key_parameter_name = args.parameter_name(API_KEY)
        self.read_only_api_key_parameter_name = args.parameter_name(READ_ONLY_API_KEY)
        self.previous_api_key_parameter_name = args.parameter_name(PREVIOUS_API_KEY)
        self.api_key_parameter = master_parameter.name
        self.parameters = [master_parameter, read_only_parameter, previous_parameter]
        self.parameter_arns = pulumi.Output.all(*(p.arn for p in self.parameters))
        self.register_outputs(
            {
                "apiKeyParameter": master_parameter.name,
                "readOnlyApiKeyParameter": read_only_parameter.name,
                "previousApiKeyParameter": previous_parameter.name,
                "graceEndsAt": self.grace_ends_at,
            }
        )

    @staticmethod
    def _password(name: str, version: int, child: pulumi.ResourceOptions) -> random.RandomPassword:
        return random.RandomPassword(
            name,
            length=API_KEY_LENGTH,
            special=False,
            keepers={"version": str(version)},
            opts=child,
        )

    @staticmethod
    def _grace_end(
        name: str, args: ApiKeysArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[int]:
        if args.version == 1:
            return pulumi.Output.from_input(0)
        # Runs again only when the version changes: the window is counted from the rotation, and
        # changing `keyGraceHours` later moves its end without restarting it.
        clock = command.local.Command(
            f"{name}-rotated-at",
            create=ROTATION_CLOCK_CREATE,
            update=ROTATION_CLOCK_UPDATE,
            add_previous_output_in_env=True,
            triggers=[args.version],
            opts=child,
        )
        return clock.stdout.apply(
            lambda started: int(started) + args.grace_hours * SECONDS_PER_HOUR
        )

    @staticmethod
    def _parameter(
        name: str,
        kind: str,
        args: ApiKeysArgs,
        value: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> aws.ssm.Parameter:
        return aws.ssm.Parameter(
            f"{name}-{kind}",
            name=args.parameter_name(kind),
            type="SecureString",
            value=value,
            description=f"Qdrant {kind.replace('-', ' ')} (generated by secure-qdrant)",
            opts=opts,
        )

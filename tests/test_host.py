"""The VM and its data: IMDSv2, encryption, and a database that outlives any instance."""

import pytest

from model.settings import DATA_VOLUME_DEVICE
from tests.program import DEFAULT_SUBNET_ZONES, MINIMAL_CONFIG, REGION, Failed, deploy

INSTANCE = "aws:ec2/instance:Instance"
GET_AMI = "aws:ec2/getAmi:getAmi"
VOLUME = "aws:ebs/volume:Volume"
DOCUMENT = "aws:s3/bucketObjectv2:BucketObjectv2"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"


def test_instance_requires_imdsv2_with_a_single_hop():
    """IMDSv2 tokens defeat SSRF credential theft; one hop keeps containers away from the role."""
    instance = deploy(MINIMAL_CONFIG).one(INSTANCE)

    assert instance.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }


def test_root_volume_is_encrypted_gp3():
    """The root disk holds the fetched API keys: encrypted at rest like the data."""
    root = deploy(MINIMAL_CONFIG).one(INSTANCE).inputs["rootBlockDevice"]

    assert root["encrypted"] is True
    assert root["volumeType"] == "gp3"


def test_data_volume_is_a_separate_encrypted_protected_gp3_volume():
    """Qdrant's data lives apart from the instance and cannot be deleted by `pulumi destroy`, so
    replacing the VM (new AMI, new user data) loses nothing."""
    deployment = deploy(dict(MINIMAL_CONFIG, dataVolumeSizeGb=50))

    volume = deployment.one(VOLUME)
    assert volume.inputs["encrypted"] is True
    assert volume.inputs["type"] == "gp3"
    assert volume.inputs["size"] == 50
    assert volume.options.protect is True
    assert deployment.outputs["dataVolumeId"].value.startswith("vol-")


def test_data_volume_is_attached_in_the_instances_zone_and_detached_before_replacement():
    """A volume attaches to one instance at a time: the old attachment must go first, after the
    old instance stopped so Qdrant's files are flushed."""
    deployment = deploy(MINIMAL_CONFIG)

    volume = deployment.one(VOLUME)
    attachment = deployment.one(ATTACHMENT)
    assert volume.inputs["availabilityZone"] == f"{REGION}a"
    assert attachment.inputs["deviceName"] == DATA_VOLUME_DEVICE
    assert attachment.inputs["stopInstanceBeforeDetaching"] is True
    assert attachment.options.deleteBeforeReplace is True


def test_new_user_data_replaces_the_instance():
    """cloud-init runs on first boot only; in-place user data changes would never take effect."""
    instance = deploy(MINIMAL_CONFIG).one(INSTANCE)

    assert instance.inputs["userDataReplaceOnChange"] is True


def _ami_query(deployment) -> dict:
    [query] = [args for token, args in deployment.calls if token == GET_AMI]
    return query


@pytest.mark.parametrize(
    ("host_os", "instance_type", "architecture", "owner", "name"),
    [
        (
            "ubuntu-24.04",
            "t3.medium",
            "x86_64",
            "099720109477",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251212",
        ),
        (
            "ubuntu-24.04",
            "t4g.medium",
            "arm64",
            "099720109477",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251212",
        ),
        ("debian-12", "t3.medium", "x86_64", "136693071363", "debian-12-amd64-20231013-1532"),
        ("debian-12", "t4g.medium", "arm64", "136693071363", "debian-12-arm64-20231013-1532"),
    ],
    ids=["ubuntu-x86_64", "ubuntu-arm64", "debian-x86_64", "debian-arm64"],
)
def test_ami_is_the_official_image_of_the_pinned_release_for_the_os_and_architecture(
    host_os, instance_type, architecture, owner, name
):
    """An exact image name from the distribution's own account, never `*` with most_recent: a
    newly published image must not replace the host on a routine `pulumi up`, and a look-alike
    (an AWS Marketplace copy, Debian's backports-kernel image) must never be picked."""
    deployment = deploy(
        dict(MINIMAL_CONFIG, hostOs=host_os, instanceType=instance_type, architecture=architecture)
    )

    query = _ami_query(deployment)
    filters = {f["name"]: f["values"] for f in query["filters"]}
    assert query["owners"] == [owner]
    assert filters["name"] == [name]
    assert filters["architecture"] == [architecture]
    assert deployment.one(INSTANCE).inputs["instanceType"] == instance_type


@pytest.mark.parametrize("host_os", ["ubuntu-24.04", "debian-12"])
def test_a_pinned_release_still_resolves_after_it_is_deprecated(host_os):
    """DescribeImages hides deprecated images unless asked, and AWS deprecates public images two
    years after publication: the pin would otherwise break a later `pulumi up`."""
    assert _ami_query(deploy(dict(MINIMAL_CONFIG, hostOs=host_os)))["includeDeprecated"] is True


@pytest.mark.parametrize(
    ("host_os", "release", "name"),
    [
        (
            "ubuntu-24.04",
            "20250610",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
        ),
        ("debian-12", "20250316-2053", "debian-12-amd64-20250316-2053"),
    ],
)
def test_image_release_config_chooses_the_image(host_os, release, name):
    query = _ami_query(deploy(dict(MINIMAL_CONFIG, hostOs=host_os, imageRelease=release)))

    [names] = [f["values"] for f in query["filters"] if f["name"] == "name"]
    assert names == [name]


def test_switching_the_host_os_replaces_the_instance_from_the_other_image():
    """A new AMI is a new instance (the data volume, address and certificate stay): switching the
    OS is a planned replacement onto the chosen distribution, never an in-place no-op."""
    ubuntu = deploy(MINIMAL_CONFIG).one(INSTANCE)
    debian = deploy(dict(MINIMAL_CONFIG, hostOs="debian-12")).one(INSTANCE)

    assert ubuntu.inputs["ami"] != debian.inputs["ami"]
    assert list(debian.options.ignoreChanges) == []


def test_instance_follows_the_chosen_image_instead_of_ignoring_it():
    """`ignore_changes` on `ami` makes the engine reuse the old AMI for every replacement: a key
    rotation or an architecture switch would relaunch the first image (x86_64 -> arm64 fails)."""
    x86 = deploy(MINIMAL_CONFIG).one(INSTANCE)
    arm = deploy(dict(MINIMAL_CONFIG, instanceType="t4g.medium", architecture="arm64")).one(
        INSTANCE
    )

    assert list(x86.options.ignoreChanges) == []
    assert x86.inputs["ami"] != arm.inputs["ami"]


def test_instance_launches_after_the_key_parameters_and_the_permission_to_read_them():
    """The first boot fetches the keys: a launch racing their creation, or IAM's propagation,
    would find nothing to read."""
    deployment = deploy(MINIMAL_CONFIG)

    dependencies = set(deployment.one(INSTANCE).options.dependencies)
    for typ in (
        "aws:ssm/parameter:Parameter",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    ):
        # The backups' role (`-dlm`) is DLM's, not the instance's.
        for resource in deployment.of_type(typ):
            if resource.name.startswith("qdrant-test-dlm"):
                continue
            assert any(urn.endswith(f"{typ}::{resource.name}") for urn in dependencies), (
                f"the instance does not wait for {resource.name}"
            )


def test_elastic_ip_is_associated_and_exported():
    """A stable address keeps DNS valid when the instance is replaced."""
    deployment = deploy(MINIMAL_CONFIG)

    eip = deployment.one("aws:ec2/eip:Eip")
    association = deployment.one("aws:ec2/eipAssociation:EipAssociation")
    assert eip.inputs["domain"] == "vpc"
    assert association.inputs["allocationId"].startswith("eipalloc-")
    assert association.inputs["instanceId"] == deployment.outputs["instanceId"].value
    assert deployment.outputs["publicIp"].value == "198.51.100.7"


def test_default_vpc_subnet_is_the_one_in_the_first_zone_by_name():
    """The same subnet on every run, and zones a region adds later sort last: a moving choice
    would replace the host and strand its data."""
    instance = deploy(MINIMAL_CONFIG).one(INSTANCE)

    first_zone = min(DEFAULT_SUBNET_ZONES.values())
    assert DEFAULT_SUBNET_ZONES[instance.inputs["subnetId"]] == first_zone


def test_default_subnet_is_in_a_zone_that_offers_the_instance_type():
    """RunInstances fails in a zone where the type is not offered."""
    deployment = deploy(dict(MINIMAL_CONFIG, instanceType="m8i.large"))

    subnet = deployment.one(INSTANCE).inputs["subnetId"]
    assert DEFAULT_SUBNET_ZONES[subnet] == f"{REGION}c"
    assert deployment.one(VOLUME).inputs["availabilityZone"] == f"{REGION}c"


def test_instance_type_offered_in_no_zone_fails_before_any_resource():
    with pytest.raises(
        Failed, match="c7gn.large is not offered in any availability zone"
    ) as failed:
        deploy(dict(MINIMAL_CONFIG, instanceType="c7gn.large", architecture="arm64"))

    assert failed.value.registered == []


def test_configured_subnet_in_a_zone_without_the_instance_type_fails_before_any_resource():
    with pytest.raises(
        Failed, match="subnet-0123456789abcdef0 is in eu-central-1b, where m8i.large"
    ) as failed:
        deploy(dict(MINIMAL_CONFIG, instanceType="m8i.large", subnetId="subnet-0123456789abcdef0"))

    assert failed.value.registered == []


def test_configured_subnet_is_used():
    instance = deploy(dict(MINIMAL_CONFIG, subnetId="subnet-0123456789abcdef0")).one(INSTANCE)

    assert instance.inputs["subnetId"] == "subnet-0123456789abcdef0"


def test_every_child_resource_belongs_to_a_component():
    """Components own their children, so several hosts can share one stack without name clashes."""
    deployment = deploy(
        dict(MINIMAL_CONFIG, adminCidrs=["203.0.113.0/24"], hostedZone="example.com")
    )

    for resource in deployment.resources:
        if not resource.typ.startswith("secure-qdrant:"):
            assert "secure-qdrant:" in resource.options.parent, resource.name
        assert resource.name.startswith("qdrant-test"), resource.name


def test_growing_the_data_volume_is_published_to_the_host_once_the_volume_grew():
    """The host grows the filesystem online when its configuration says the new size: the
    document must carry it, and be rendered only once the volume has its new size (before, the
    filesystem would be found as large as the device and never grown). The user data stays: no
    new host."""
    small = deploy(dict(MINIMAL_CONFIG, dataVolumeSizeGb=20))
    large = deploy(dict(MINIMAL_CONFIG, dataVolumeSizeGb=40))

    assert small.user_data == large.user_data
    assert "DATA_VOLUME_SIZE_GB=40" in large.one(DOCUMENT).inputs["content"]
    volume = large.one(VOLUME)
    document_dependencies = large.one(DOCUMENT).options.propertyDependencies["content"].urns
    assert any(urn.endswith(f"{VOLUME}::{volume.name}") for urn in document_dependencies)

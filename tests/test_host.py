"""The VM and its data: IMDSv2, encryption, and a database that outlives any instance."""

import pytest

from components.settings import DATA_VOLUME_DEVICE
from tests.program import DEFAULT_SUBNETS, MINIMAL_CONFIG, REGION, deploy

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
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
    assert volume.inputs["availabilityZone"] == f"{REGION}b"
    assert attachment.inputs["deviceName"] == DATA_VOLUME_DEVICE
    assert attachment.inputs["stopInstanceBeforeDetaching"] is True
    assert attachment.options.deleteBeforeReplace is True


def test_new_user_data_replaces_the_instance():
    """cloud-init runs on first boot only; in-place user data changes would never take effect."""
    instance = deploy(MINIMAL_CONFIG).one(INSTANCE)

    assert instance.inputs["userDataReplaceOnChange"] is True


@pytest.mark.parametrize(
    ("instance_type", "architecture", "image_arch"),
    [("t3.medium", "x86_64", "amd64"), ("t4g.medium", "arm64", "arm64")],
)
def test_ami_is_canonicals_ubuntu_noble_for_the_architecture(instance_type, architecture, image_arch):
    deployment = deploy(dict(MINIMAL_CONFIG, instanceType=instance_type, architecture=architecture))

    [ami_query] = [args for token, args in deployment.calls if token == "aws:ec2/getAmi:getAmi"]
    filters = {f["name"]: f["values"] for f in ami_query["filters"]}
    assert ami_query["owners"] == ["099720109477"]
    assert filters["name"] == [f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{image_arch}-server-*"]
    assert filters["architecture"] == [architecture]
    assert deployment.one(INSTANCE).inputs["instanceType"] == instance_type


def test_elastic_ip_is_associated_and_exported():
    """A stable address keeps DNS valid when the instance is replaced."""
    deployment = deploy(MINIMAL_CONFIG)

    eip = deployment.one("aws:ec2/eip:Eip")
    association = deployment.one("aws:ec2/eipAssociation:EipAssociation")
    assert eip.inputs["domain"] == "vpc"
    assert association.inputs["allocationId"].startswith("eipalloc-")
    assert association.inputs["instanceId"] == deployment.outputs["instanceId"].value
    assert deployment.outputs["publicIp"].value == "198.51.100.7"


def test_default_vpc_subnet_is_chosen_stably_when_none_is_configured():
    """The same subnet on every run: a moving choice would replace the host and strand its data."""
    instance = deploy(MINIMAL_CONFIG).one(INSTANCE)

    assert instance.inputs["subnetId"] == sorted(DEFAULT_SUBNETS)[0]


def test_configured_subnet_is_used():
    instance = deploy(dict(MINIMAL_CONFIG, subnetId="subnet-0123456789abcdef0")).one(INSTANCE)

    assert instance.inputs["subnetId"] == "subnet-0123456789abcdef0"


def test_every_child_resource_belongs_to_a_component():
    """Components own their children, so several hosts can share one stack without name clashes."""
    deployment = deploy(dict(MINIMAL_CONFIG, adminCidrs=["203.0.113.0/24"], hostedZone="example.com"))

    for resource in deployment.resources:
        if not resource.typ.startswith("secure-qdrant:"):
            assert "secure-qdrant:" in resource.options.parent, resource.name
        assert resource.name.startswith("qdrant-test"), resource.name

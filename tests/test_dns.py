"""DNS: a record only in a zone the user named, pointing at the stable address."""

from tests.program import MINIMAL_CONFIG, PUBLIC_IP, deploy

RECORD = "aws:route53/record:Record"


def test_no_dns_record_without_hosted_zone():
    """Without a zone the user points DNS themselves; the program must not guess a zone."""
    deployment = deploy(MINIMAL_CONFIG)

    assert deployment.of_type(RECORD) == []
    assert not any(token == "aws:route53/getZone:getZone" for token, _ in deployment.calls)


def test_record_points_the_domain_at_the_elastic_ip_with_a_short_ttl():
    deployment = deploy(dict(MINIMAL_CONFIG, hostedZone="example.com"))

    record = deployment.one(RECORD)
    assert record.inputs["zoneId"] == "Z0123456789ABC"
    assert (record.inputs["name"], record.inputs["type"]) == ("qdrant.example.com", "A")
    assert record.inputs["records"] == [PUBLIC_IP]
    assert record.inputs["ttl"] == 60
    [(_, zone_query)] = [c for c in deployment.calls if c[0] == "aws:route53/getZone:getZone"]
    assert zone_query == {"name": "example.com", "privateZone": False}


def test_outputs_tell_apps_where_to_connect():
    outputs = deploy(MINIMAL_CONFIG).outputs

    assert outputs["restUrl"].value == "https://qdrant.example.com"
    assert (outputs["grpcHost"].value, outputs["grpcPort"].value) == ("qdrant.example.com", 6334)

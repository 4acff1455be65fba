"""The shipped OpenAPI documents: served bytes and the compiled schema view."""

import hashlib

from jobplane.api import openapi


def test_documents_are_the_shipped_bytes() -> None:
    docs = openapi.documents()
    assert set(docs) == {"api/v1", "apis/batch/v1", "apis/discovery.k8s.io/v1", "apis/storage.k8s.io/v1",
                         "apis/node.k8s.io/v1", "apis/certificates.k8s.io/v1", "apis/authentication.k8s.io/v1",
                         "apis/rbac.authorization.k8s.io/v1", "apis/authorization.k8s.io/v1",
                         ".well-known/openid-configuration", "openid/v1/jwks"}
    assert hashlib.sha256(docs[".well-known/openid-configuration"]).hexdigest() == (
        "d776f5a3b4924075c3105f6576a4167c56a9b31d94219e4eb304af17841f1c0c")
    assert hashlib.sha256(docs["openid/v1/jwks"]).hexdigest() == (
        "be0369fabc2dd2e26ddde8ffcc4829f0559c4f76841d96d154f76cb3ad2e95db")
    assert hashlib.sha256(docs["apis/discovery.k8s.io/v1"]).hexdigest() == (
        "89c718eac1f1db2d49e6029c5dedefdeca2fb5fee470a9f96f2951f08e5190f2")
    assert hashlib.sha256(docs["apis/storage.k8s.io/v1"]).hexdigest() == (
        "eb37f206e8b9e097e6e16faf8c4778cbe1c77a2a4d6f21d8f5ec723564e2bb4d")
    assert hashlib.sha256(docs["apis/node.k8s.io/v1"]).hexdigest() == (
        "93df193868b3d77aa76e768c4afadfd846036a4dc8b16a290026058818f22403")
    assert hashlib.sha256(docs["apis/certificates.k8s.io/v1"]).hexdigest() == (
        "8eb26a08f4700b58d8156a9e605c575fa543a479f277583873a9c981fa74bbf0")
    assert hashlib.sha256(docs["api/v1"]).hexdigest() == (
        "e70786b2b36d53fa99dd72910f2ef82a12384abc8d28ce144ebc9899c32b109c")
    assert hashlib.sha256(docs["apis/batch/v1"]).hexdigest() == (
        "5f09687551d11cc84567d8cc5f97b65465512c81d496c8c63f712a5e34352447")
    assert openapi.documents() is docs  # cached


def test_kinds_are_found_by_group_version_kind() -> None:
    assert openapi.schema_name("batch", "v1", "Job") == "io.k8s.api.batch.v1.Job"
    assert openapi.schema_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert openapi.schema_name("coordination.k8s.io", "v1", "Lease") is None
    assert openapi.node_for("coordination.k8s.io", "v1", "Lease") is None


def test_resolve_flattens_ref_and_allof() -> None:
    job = openapi.raw_schema("io.k8s.api.batch.v1.Job")
    assert job is not None
    spec = openapi.resolve(job["properties"]["spec"])
    assert "template" in spec["properties"]
    assert spec["description"].startswith("Specification of the desired behavior of a job")


def test_compiled_tree_carries_patch_metadata() -> None:
    job = openapi.node_for("batch", "v1", "Job")
    assert job is not None and job.kind == openapi.OBJECT
    pod_spec = job.properties["spec"].properties["template"].properties["spec"]
    containers = pod_spec.properties["containers"]
    assert containers.kind == openapi.ARRAY
    assert containers.merge_key == "name" and "merge" in containers.strategies
    volumes = pod_spec.properties["volumes"]
    assert volumes.strategies == frozenset({"merge", "retainKeys"})
    container = containers.items
    assert container is not None
    assert container.properties["ports"].merge_key == "containerPort"
    assert container.properties["volumeMounts"].merge_key == "mountPath"
    assert container.properties["resources"].properties["limits"].kind == openapi.MAP
    assert container.properties["resources"].properties["limits"].items.kind == openapi.LEAF
    meta = job.properties["metadata"]
    assert "merge" in meta.properties["finalizers"].strategies
    assert meta.properties["ownerReferences"].merge_key == "uid"
    assert meta.properties["labels"].kind == openapi.MAP
    assert meta.properties["managedFields"].items.properties["fieldsV1"].kind == openapi.ANY

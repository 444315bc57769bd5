"""The instance role grants every AWS operation the server and the notifier call at run time.

The calls are read from the source (``client.operation(`` for each operation of the services the
instances use, by botocore's own names); the grants are the quoted ``service:Action`` strings of
deploy/terraform/iam.tf. Creating resources (``usermgmt-server create-resources``, embedded mode)
is an operator's or a developer's job, not the instances', so those modules are left out."""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session
from botocore import xform_name

from tests.deploy.terraform_support import REPO, STACK_DIR

SOURCE = REPO / "server" / "src" / "usermgmt_server"
RESOURCE_CREATION = {
    SOURCE / "adapters" / "dynamodb" / "resources.py",
    SOURCE / "notifier" / "resources.py",
    SOURCE / "embedded.py",
    SOURCE / "embedded_dynamodb.py",
}
# botocore service name -> IAM service prefix.
SERVICES = {"dynamodb": "dynamodb", "sns": "sns", "sqs": "sqs", "sesv2": "ses", "ssm": "ssm"}
# Operations authorised by other actions (AWS service authorization reference): a transaction
# needs the action of each kind of item it holds.
AUTHORISED_BY = {
    ("sns", "PublishBatch"): ("Publish",),
    ("dynamodb", "TransactWriteItems"): (
        "ConditionCheckItem",
        "DeleteItem",
        "PutItem",
        "UpdateItem",
    ),
    ("dynamodb", "TransactGetItems"): ("GetItem",),
}

Grant = frozenset[tuple[str, str]]


def _operations() -> dict[str, set[Grant]]:
    """snake_case method name -> the grants that allow it, one per service that has it."""
    session = botocore.session.get_session()
    names: dict[str, set[Grant]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            actions = AUTHORISED_BY.get((prefix, operation), (operation,))
            grant = frozenset((prefix, action) for action in actions)
            names.setdefault(xform_name(operation), set()).add(grant)
    return names


def called_operations(paths: list[Path]) -> dict[str, set[Grant]]:
    """The AWS operations called in ``paths``, by method name, with the grants allowing them."""
    operations = _operations()
    called: dict[str, set[Grant]] = {}
    for path in paths:
        for name in re.findall(r"\.([a-z_]+)\(", path.read_text()):
            if name in operations:
                called[name] = operations[name]
    return called


def granted_actions() -> set[tuple[str, str]]:
    text = (STACK_DIR / "iam.tf").read_text()
    return set(re.findall(r'"(dynamodb|sns|sqs|ses|ssm):([A-Za-z]+)"', text))


def test_the_instance_role_grants_every_operation_the_instances_call() -> None:
    paths = [path for path in SOURCE.rglob("*.py") if path not in RESOURCE_CREATION]
    called = called_operations(paths)
    # The reading of the source finds the calls it must (a broken regex would find none).
    assert {"transact_write_items", "batch_get_item", "publish_batch", "send_email"} <= set(called)
    granted = granted_actions()
    missing = {
        name: [sorted(grant) for grant in grants]
        for name, grants in called.items()
        if not any(grant <= granted for grant in grants)
    }
    assert missing == {}


def test_the_check_sees_a_missing_grant(tmp_path: Path) -> None:
    module = tmp_path / "scan.py"
    module.write_text("await client.scan(TableName=table)\n")
    called = called_operations([module])
    assert called == {"scan": {frozenset({("dynamodb", "Scan")})}}
    assert not any(grant <= granted_actions() for grant in called["scan"])

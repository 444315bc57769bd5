"""DynamoDB storage adapter: the single-table schema, the user repository, the stores of codes,
refresh tokens and login failures, the transactional outbox, leases, and the AWS clients."""

from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
from usermgmt_server.adapters.dynamodb.codes import DynamoCodeStore
from usermgmt_server.adapters.dynamodb.leases import DynamoLeaseStore
from usermgmt_server.adapters.dynamodb.login_failures import DynamoLoginFailureStore
from usermgmt_server.adapters.dynamodb.outbox import DynamoOutbox
from usermgmt_server.adapters.dynamodb.refresh_tokens import DynamoRefreshTokenStore
from usermgmt_server.adapters.dynamodb.repository import DynamoUserRepository
from usermgmt_server.adapters.dynamodb.resources import (
    ResourcesInfo,
    create_resources,
    table_is_reachable,
)
from usermgmt_server.adapters.dynamodb.schema import table_definition

__all__ = [
    "AwsClients",
    "AwsSettings",
    "DynamoCodeStore",
    "DynamoLeaseStore",
    "DynamoLoginFailureStore",
    "DynamoOutbox",
    "DynamoRefreshTokenStore",
    "DynamoUserRepository",
    "ResourcesInfo",
    "create_resources",
    "open_aws_clients",
    "table_definition",
    "table_is_reachable",
]

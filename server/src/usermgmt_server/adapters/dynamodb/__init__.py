"""DynamoDB storage adapter: the single-table schema, the user repository and AWS clients."""

from usermgmt_server.adapters.dynamodb.clients import AwsClients, AwsSettings, open_aws_clients
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
    "DynamoUserRepository",
    "ResourcesInfo",
    "create_resources",
    "open_aws_clients",
    "table_definition",
    "table_is_reachable",
]

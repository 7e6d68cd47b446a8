"""The one field of a ``qdrant.StorageRead`` request that its access check reads.

qdrant-client ships no stubs for this service. Every request message of it begins with
`string collection_name = 1` (lib/api/src/grpc/proto/storage_read_service.proto: ListFiles,
FileExists, FileLength, ReadBytes, ReadBytesStream, ReadWhole, ReadBatch, ReadMulti), and Qdrant's
handler checks collection read access on that name before anything else
(`check_collection_access(collection_name, AccessRequirements::new(), ..)` in
src/tonic/api/storage_read_api/). So a request is parsed, by the protobuf runtime, as a message
declaring that field alone; the others stay unknown fields.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_PACKAGE = "lab_qdrant_double"
_NAME = "CollectionScopedRequest"


def _message_class() -> type[Message]:
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="lab_qdrant_double/storage_read.proto", package=_PACKAGE, syntax="proto3"
    )
    message = file.message_type.add(name=_NAME)
    message.field.add(
        name="collection_name", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{_NAME}"))


CollectionScopedRequest = _message_class()

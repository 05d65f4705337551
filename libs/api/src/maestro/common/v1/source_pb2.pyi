from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SourceFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_FORMAT_UNSPECIFIED: _ClassVar[SourceFormat]
    SOURCE_FORMAT_YAML: _ClassVar[SourceFormat]
    SOURCE_FORMAT_JSON: _ClassVar[SourceFormat]
SOURCE_FORMAT_UNSPECIFIED: SourceFormat
SOURCE_FORMAT_YAML: SourceFormat
SOURCE_FORMAT_JSON: SourceFormat

class WorkflowSource(_message.Message):
    __slots__ = ("content", "format", "filename")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    format: SourceFormat
    filename: str
    def __init__(self, content: _Optional[bytes] = ..., format: _Optional[_Union[SourceFormat, str]] = ..., filename: _Optional[str] = ...) -> None: ...

class SourcePosition(_message.Message):
    __slots__ = ("line", "column")
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    line: int
    column: int
    def __init__(self, line: _Optional[int] = ..., column: _Optional[int] = ...) -> None: ...

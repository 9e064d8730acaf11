"""Resource data sources (files, Redis, HTTP) behind one interface, and the hot-path Index."""

from routr.data.errors import (
    AlreadyExists,
    BrokenSource,
    DataError,
    DependentObjects,
    InvalidFilter,
    InvalidResource,
    NotFound,
    ProviderUnavailable,
    UnfulfilledDependency,
)
from routr.data.factory import open_provider
from routr.data.files_provider import FilesProvider
from routr.data.filters import compile_filter
from routr.data.index import EgressRule, Index, system_resolver
from routr.data.live import LiveIndex
from routr.data.provider import DataProvider, Page
from routr.data.snapshot import Change, Snapshot, diff
from routr.models.config import parse_parameters

__all__ = [
    "AlreadyExists",
    "BrokenSource",
    "Change",
    "DataError",
    "DataProvider",
    "DependentObjects",
    "EgressRule",
    "FilesProvider",
    "Index",
    "InvalidFilter",
    "InvalidResource",
    "LiveIndex",
    "NotFound",
    "Page",
    "ProviderUnavailable",
    "Snapshot",
    "UnfulfilledDependency",
    "compile_filter",
    "diff",
    "open_provider",
    "parse_parameters",
    "system_resolver",
]

"""Paths on the stores Spark reads and writes (s3a://, hdfs://, abfss://, gs://, file://).

An output folder on such a store is handled by the same code as a local one: `HadoopPath`
has the few `pathlib.Path` methods that code uses, carried out by Hadoop's FileSystem in the
Spark session's JVM (the connectors, credentials and settings Spark already has). Exports on
a store are found with `store_files` and copied to the driver with `HadoopPath.download`.
It holds a session, never starts one, and needs no import of pyspark to be imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cxunify.errors import OutputError


def is_uri(location: str | Path | HadoopPath) -> bool:
    """True for a location with a scheme (``s3a://``, ``file://``), not a plain path."""
    if isinstance(location, HadoopPath):
        return True
    if isinstance(location, Path):
        return False
    scheme = urlparse(str(location)).scheme
    return len(scheme) > 1  # one letter is a Windows drive


def has_glob(location: str) -> bool:
    """True when `location` holds a character of Hadoop's glob syntax (``* ? [ {``)."""
    return any(char in location for char in "*?[{")


def store_files(pattern: str, spark: Any) -> list[HadoopPath]:
    """The files the URI `pattern` names, sorted: the file itself, or every file its Hadoop
    glob matches (``s3a://bucket/exports/crm-*.csv``, ``.../{2024,2025}/*.csv``); folders are
    left out. Each keeps the scheme and authority as written in `pattern` (``hdfs:///x``
    stays so, not the namenode's full address), so outputs name files as the user does.

    Raises what the JVM raises (no connector for the scheme, no credentials): see `jvm_reason`.
    """
    written = urlparse(pattern)
    prefix = f"{written.scheme}://{written.netloc}"
    root = HadoopPath(pattern, spark)
    found = root._fs.globStatus(root._path) or []  # None for a missing path without a glob
    uris = sorted(
        prefix + str(status.getPath().toUri().getPath()) for status in found if status.isFile()
    )
    return [HadoopPath(uri, spark) for uri in uris]


def jvm_reason(exc: BaseException) -> str:
    """The one line saying why a call into the JVM failed, without py4j's framing or the
    Java stack (``java.io.FileNotFoundException: ... does not exist``)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        return str(java.toString())
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def jvm_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed call into the JVM raises in Python (to catch only those)."""
    from py4j.protocol import Py4JError
    from pyspark.errors.exceptions.captured import CapturedException

    return (Py4JError, CapturedException)


class HadoopPath:
    """A file or folder at `uri`, reached through Hadoop's FileSystem.

    >>> out = HadoopPath("s3a://bucket/cx/out", spark)  # doctest: +SKIP
    >>> (out / "run.json").read_text()                    # doctest: +SKIP
    """

    def __init__(self, uri: str, spark: Any):
        self.uri = uri.rstrip("/") if uri.rstrip("/").count("/") > 2 else uri
        self.spark = spark
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self._path = jvm.org.apache.hadoop.fs.Path(self.uri)
        self._fs = self._path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def __truediv__(self, name: str) -> HadoopPath:
        return HadoopPath(f"{self.uri}/{name}", self.spark)

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"HadoopPath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HadoopPath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]

    @property
    def parent(self) -> HadoopPath:
        return HadoopPath(self.uri.rsplit("/", 1)[0], self.spark)

    def resolve(self) -> HadoopPath:
        return self

    def exists(self) -> bool:
        return bool(self._fs.exists(self._path))

    def is_file(self) -> bool:
        return self.exists() and bool(self._fs.getFileStatus(self._path).isFile())

    def is_dir(self) -> bool:
        return self.exists() and bool(self._fs.getFileStatus(self._path).isDirectory())

    def iterdir(self) -> Iterator[HadoopPath]:
        for status in self._fs.listStatus(self._path):
            yield self / status.getPath().getName()

    def glob(self, pattern: str) -> list[HadoopPath]:
        """Entries of this folder whose name matches `pattern` (Hadoop's glob syntax)."""
        found = self._fs.globStatus(self._jvm.org.apache.hadoop.fs.Path(f"{self.uri}/{pattern}"))
        return [self / status.getPath().getName() for status in (found or [])]

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        if not exist_ok and self.exists():
            raise OutputError(f"{self}: exists already")
        if not self._fs.mkdirs(self._path):
            raise OutputError(f"{self}: cannot create the folder")

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        stream = self._fs.create(self._path, True)
        try:
            stream.write(bytearray(text.encode(encoding)))
        finally:
            stream.close()

    def read_text(self, encoding: str = "utf-8") -> str:
        buffer = self._jvm.java.io.ByteArrayOutputStream()
        copy = self._jvm.org.apache.hadoop.io.IOUtils.copyBytes
        copy(self._fs.open(self._path), buffer, 65536, True)  # closes both streams
        return bytes(buffer.toByteArray()).decode(encoding)

    def rename(self, target: HadoopPath) -> HadoopPath:
        """Move to `target`, which must not exist (Hadoop would move *into* a folder)."""
        if target.exists():
            raise OutputError(f"{target}: exists; cannot move {self} there")
        if not self._fs.rename(self._path, target._path):
            raise OutputError(f"{self}: cannot move it to {target}")
        return target

    def unlink(self, missing_ok: bool = False) -> None:
        if not self._fs.delete(self._path, False) and not missing_ok:
            raise OutputError(f"{self}: cannot delete it")

    def remove_tree(self) -> None:
        """Delete this folder and everything in it (nothing when it does not exist)."""
        self._fs.delete(self._path, True)

    def download(self, local: Path) -> None:
        """Copy this file to the local file `local` (an export on a store, for the driver)."""
        target = self._jvm.org.apache.hadoop.fs.Path(local.resolve().as_uri())
        # The raw local filesystem writes no .crc file beside the copy.
        self._fs.copyToLocalFile(False, self._path, target, True)

    def upload(self, local: Path) -> None:
        """Copy the local file or folder `local` here (the driver's files, for the executors)."""
        source = self._jvm.org.apache.hadoop.fs.Path(local.resolve().as_uri())
        self._fs.copyFromLocalFile(False, True, source, self._path)

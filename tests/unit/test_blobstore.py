"""Blob stores: the local directory store for real; the S3 store against moto, an S3 emulator (no
S3-compatible server can be installed on the build machine), to exercise the multipart-upload logic."""

from pathlib import Path

import pytest

from shared.blobstore import LocalBlobStore, S3BlobStore

MB = 1024 * 1024


def test_local_store_commits_atomically(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    w = store.writer("proj/file-1")
    w.write(b"a" * MB)
    assert not (tmp_path / "proj" / "file-1").exists()  # invisible until committed
    w.write(b"b")
    w.commit()
    assert b"".join(store.read("proj/file-1")) == b"a" * MB + b"b"
    store.delete("proj/file-1")
    assert not (tmp_path / "proj" / "file-1").exists()


def test_local_store_abort_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    w = store.writer("p/f")
    w.write(b"partial")
    w.abort()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path / "root").writer("../escape")


def test_s3_store_multipart_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import moto

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="blobs")
        store = S3BlobStore("blobs", prefix="files/")
        payload = bytes(range(256)) * (20 * MB // 256) + b"tail"  # 3 parts of 8 MiB, the last short
        w = store.writer("p/f")
        for i in range(0, len(payload), MB):
            w.write(payload[i:i + MB])
        w.commit()
        assert b"".join(store.read("p/f")) == payload
        empty = store.writer("p/empty")
        empty.commit()
        assert b"".join(store.read("p/empty")) == b""
        aborted = store.writer("p/aborted")
        aborted.write(b"x")
        aborted.abort()
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="blobs")["Contents"]]
        assert sorted(keys) == ["files/p/empty", "files/p/f"]
        store.delete("p/f")
        assert [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="blobs")["Contents"]] == ["files/p/empty"]

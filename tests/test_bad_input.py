"""Bad config values are refused at load naming the file and key; no secret reaches a log line or an error."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from archive.index import DigestIndex
from archive.staging import Staging
from newsvault.errors import ProfileError
from newsvault.redact import REDACTED, RedactingFormatter, redact
from spiders.profile import load_profile
from tests.plugins.cli import NewsvaultRunner, run_newsvault

CANARY_SECRET = "canary-secret-4f1b9e0d7c2a"
CANARY_TOKEN = "canary-session-token-8e3d51aa90"


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ("[crawl]\nmax_response_bytes = true\n", "crawl.max_response_bytes", "expected a number, not true"),
        ("[crawl]\ndownload_delay_seconds = inf\n", "crawl.download_delay_seconds", "finite number"),
        ('[archive]\nurl = "ftp://x/y"\n', "archive.url", "unsupported archive URL scheme 'ftp'"),
        ('[archive]\nurl = "s3:///prefix"\n', "archive.url", "needs a bucket"),
        ("[schedules.sample.articles]\ninterval_seconds = 99999999999999999\n",
         "schedules.sample.articles.interval_seconds", "less than or equal"),
        ('[daemon]\njobstore_url = "mysql+mysqldb://newsvault:hunter2hunter2@db.example/newsvault"\n',
         "daemon.jobstore_url", "driver is not installed"),
    ],
)
def test_bad_values_are_refused_at_load_with_file_and_key(
    newsvault_cli: NewsvaultRunner, tmp_path: Path, toml: str, key: str, problem: str
) -> None:
    config = tmp_path / "newsvault.toml"
    config.write_text(toml, encoding="utf-8")
    # Not newsvault_cli(): its fast-crawl variables would override the file's values.
    env = {"NEWSVAULT_STATE_DIR": str(newsvault_cli.state_dir)}
    for command in (["snapshots"], ["jobs"], ["crawl", "sample"]):
        result = run_newsvault(*command, "--config", str(config), env=env, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith(f"newsvault: error: {config}: {key}: ") and problem in line, line
        assert "Traceback" not in result.stderr
        assert "hunter2hunter2" not in result.stderr  # a password in a URL is masked


def test_a_bad_archive_on_the_command_line_is_refused_the_same_way(newsvault_cli: NewsvaultRunner) -> None:
    result = newsvault_cli("snapshots", "--archive", "gs://bucket/x")
    assert result.returncode == 2 and "command line: archive.url: unsupported archive URL scheme 'gs'" in result.stderr
    assert "Traceback" not in result.stderr


def test_values_of_unknown_and_credential_keys_are_never_echoed(newsvault_cli: NewsvaultRunner, tmp_path: Path) -> None:
    config = tmp_path / "newsvault.toml"
    config.write_text(f'[archive]\naws_secret_access_key = "{CANARY_SECRET}"\n', encoding="utf-8")
    result = newsvault_cli("snapshots", "--config", str(config))
    assert result.returncode == 2 and "archive.aws_secret_access_key: unknown key" in result.stderr
    assert CANARY_SECRET not in result.stderr + result.stdout
    env_result = newsvault_cli("snapshots", env={"NEWSVAULT_CRAWL_USER_AGENT_TOKEN": CANARY_SECRET})
    assert CANARY_SECRET not in env_result.stderr + env_result.stdout


def test_a_profile_name_the_archive_cannot_store_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "dotted.toml"
    path.write_text('name = "news.example"\n[start_urls]\nfront = ["http://x.test/"]\n[articles]\nurl_patterns = "/n/"\n',
                    encoding="utf-8")
    with pytest.raises(ProfileError, match=rf"^{path}: name: "):
        load_profile(path)


def test_redaction_covers_headers_signed_urls_and_secret_values() -> None:
    line = ("Sending http request: <AWSPreparedRequest headers={'x-amz-security-token': b'" + CANARY_TOKEN + "', "
            "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=abcdef0123'}> url=https://h/b/k?X-Amz-Security-Token=" + CANARY_TOKEN
            + "&X-Amz-Signature=deadbeef secret " + CANARY_SECRET)
    cleaned = redact(line, [CANARY_SECRET])
    assert REDACTED in cleaned
    for secret in (CANARY_TOKEN, CANARY_SECRET, "AKIDEXAMPLE", "abcdef0123", "deadbeef"):
        assert secret not in cleaned
    record = logging.LogRecord("botocore", logging.DEBUG, __file__, 1, "token %s", (CANARY_TOKEN,), None)
    assert CANARY_TOKEN not in RedactingFormatter(secrets=[CANARY_TOKEN]).format(record)


def test_debug_logs_of_push_and_crawl_never_show_credentials(
    newsvault_cli: NewsvaultRunner, s3_server: Any, sample_site_factory: Any
) -> None:
    newsvault_cli.env.update({**s3_server.env(), "NEWSVAULT_ARCHIVE": s3_server.archive_url("canary"),
                              "AWS_SESSION_TOKEN": CANARY_TOKEN})
    spool = newsvault_cli.state_dir / "spool"
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9,
                      index=DigestIndex.in_state_dir(newsvault_cli.state_dir, newsvault_cli.env["NEWSVAULT_ARCHIVE"]))
    staging.write_item({"type": "article", "url": "http://sample.test/a/1", "change": "new"})
    staging.finalise(finish_reason="finished")
    pushed = newsvault_cli("-v", "push")
    site = sample_site_factory(articles=60)
    crawled = newsvault_cli("-v", "crawl", "sample", "--start-url", site.base_url + "/",
                            env={"NEWSVAULT_CRAWL_LOG_LEVEL": "DEBUG"})
    everything = pushed.stdout + pushed.stderr + crawled.stdout + crawled.stderr
    assert "x-amz-security-token" in everything.lower() or "authorization" in everything.lower()  # botocore did log
    for secret in (CANARY_TOKEN, s3_server.secret_key):
        assert secret not in everything

"""Replays WARC files through pywb and prints what it serves, as JSON (run with pywb's own interpreter).

pywb monkeypatches the whole process with gevent at import and emits
deprecation warnings, so it never runs inside pytest: tests call
:func:`tests.plugins.replay.replay`, which runs this file in pywb's virtualenv
(``make test`` creates it next to the project's).

    python pywb_child.py '{"warcs": ["a.warc.gz"], "requests": [["http://x/", "20261125060000"]]}'
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults


def main(arg: str) -> None:
    from pywb.apps.frontendapp import FrontEndApp
    from pywb.indexer.cdxindexer import write_cdx_index

    logging.disable(logging.CRITICAL)
    spec = json.loads(arg)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = work / "archive"
        archive.mkdir()
        lines: list[bytes] = []
        for n, source in enumerate(map(Path, spec["warcs"])):
            name = f"{n:03d}-{source.name}"
            shutil.copy(source, archive / name)
            buffer = io.BytesIO()
            with open(archive / name, "rb") as fh:
                write_cdx_index(buffer, fh, name, cdxj=True, sort=True, append_post=True)
            lines += buffer.getvalue().splitlines(keepends=True)
        (work / "index.cdxj").write_bytes(b"".join(sorted(lines)))
        (work / "config.yaml").write_text("")
        app = FrontEndApp(config_file=str(work / "config.yaml"), custom_config={
            "collections": {"coll": {"index": str(work / "index.cdxj"), "archive_paths": f"{archive}/"}},
            "enable_auto_colls": False, "framed_replay": False})
        out = []
        for url, timestamp in spec["requests"]:
            # id_: the capture as recorded (status, headers, body), Location not rewritten.
            env: dict[str, Any] = {"PATH_INFO": f"/coll/{timestamp}id_/{url}", "REQUEST_METHOD": "GET", "QUERY_STRING": ""}
            setup_testing_defaults(env)
            got: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None,
                               got: dict[str, Any] = got) -> None:
                got.update(status=status, headers=headers)

            body_iter = app(env, start_response)
            try:
                body = b"".join(body_iter)
            finally:
                getattr(body_iter, "close", lambda: None)()
            out.append({"url": url, "status": int(got["status"].split()[0]),
                        "headers": {k.lower(): v for k, v in got["headers"]}, "body": body.decode("latin-1")[:200]})
        app.warcserver_server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

"""The web view of the archive: runs, snapshots, article timelines and diffs, thread charts, archived pages.

``newsvault web`` serves it alone; ``newsvault daemon --web-port P`` serves it
from the daemon. :func:`web.server.WebServer` runs it in a thread,
:func:`web.app.create_app` builds the ASGI application.
"""

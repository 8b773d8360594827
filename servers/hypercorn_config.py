"""hypercorn settings no command-line flag reaches, loaded with ``--config python:servers.hypercorn_config``.

hypercorn copies every attribute of this module that is not a module or a dunder into its Config, so it
holds exactly the settings and nothing else.
"""

import servers.limits as _limits

# The same WebSocket message limit as uvicorn's --ws-max-size and the Flask adapter's: all close with 1009.
websocket_max_message_size = _limits.MAX_WS_MESSAGE_BYTES

from .lifetime import die_with_the_hub, hub_pid

HUB_PID = hub_pid()  # first thing, before the slow imports: see lifetime.hub_pid
die_with_the_hub(HUB_PID)

import asyncio  # noqa: E402

from .app import serve  # noqa: E402

asyncio.run(serve(hub_pid=HUB_PID))

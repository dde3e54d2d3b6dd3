import asyncio

from .app import serve

asyncio.run(serve())

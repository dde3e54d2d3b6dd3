"""A batch cell's log, followed: each line fetched once, in order, as the cell prints it.

One answer of the service's ``GET /jobs/{id}/logs?follow=true`` stays open in a thread and
streams the lines as the site's log grows (Kubernetes' ``follow``, through the virtual kubelet
to the site's plugin); it ends when the job's container ends. The lines before the result
frame are the cell's output; at the frame the follower stops (the frame is the service's to
read, and a traceback after it is re-raised in the notebook instead). Should the answer break
before the job ends, the follower asks again and skips the lines it already has.
"""

from __future__ import annotations

import codecs
import queue
import threading
from typing import Any

from intertwin_hub.offload import frame
from intertwin_hub.status import FINAL

from .client import OffloadError, ServiceClient

# what one followed answer may start with: the whole log so far (the service's upper bound)
MAX_TAIL = 100000
RETRY_SECONDS = 1.0
READ_BYTES = 65536


class LogFollower:
    """Follows one job's log in a daemon thread; :meth:`take` hands over the new lines."""

    def __init__(self, client: ServiceClient, job_id: str) -> None:
        self.client = client.fresh()
        self.job_id = job_id
        self.received = 0  # complete lines of the log read so far (the frame's excluded)
        self.requests = 0  # followed answers asked for
        self.frame_seen = False
        self._partial = ""  # a last line without its newline, as the last answer ended
        self.error: str | None = None  # why the follower gave up, if it did
        self.done = threading.Event()
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread = threading.Thread(target=self._run, name=f"offload-log-{job_id}", daemon=True)

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def take(self) -> list[str]:
        """The lines that arrived since the last call, in order."""
        out: list[str] = []
        while True:
            try:
                out.append(self._lines.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        """Stop following: the open answer is shut down (urllib3's ``shutdown`` interrupts a
        read blocked in another thread, https://urllib3.readthedocs.io/en/stable/reference/
        urllib3.response.html#urllib3.response.HTTPResponse.shutdown)."""
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.raw.shutdown()
            except Exception:
                pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    ended = self._follow_once()
                except OffloadError as e:
                    status = getattr(e, "status", None)
                    if status in (403, 404) or (status == 409 and self._job_ended()):
                        # no log to follow: the job is not the caller's, or it has ended, its
                        # pod is gone and no last lines were kept
                        self.error = str(e)
                        return
                    ended = False  # the site has no log of it yet: ask again
                except Exception:  # the answer broke (a reset, or stop() shut it down)
                    ended = False
                if self.frame_seen or self._stop.is_set():
                    return
                if ended and self._job_ended():
                    if self._partial:
                        # the log's last line had no newline: it is complete, the log ended
                        self.received += 1
                        self._lines.put(self._partial)
                    return
                self._stop.wait(RETRY_SECONDS)
        finally:
            self.done.set()

    def _job_ended(self) -> bool:
        try:
            return self.client.job(self.job_id).get("state") in FINAL
        except OffloadError:
            return False

    def _follow_once(self) -> bool:
        """One followed answer; True when the service ended it (the log ended)."""
        self.requests += 1
        resp = self.client.follow_logs(self.job_id, MAX_TAIL)
        self._resp = resp
        # a stored tail (the pod is gone) holds only the last lines: nothing to skip there
        skip = self.received if resp.headers.get("Intertwin-Log-Source") == "live" else 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        try:
            while True:
                # what has arrived, as soon as it has (urllib3's read1; iter_content would
                # wait for a whole answer that is not sent in chunks)
                chunk = resp.raw.read1(READ_BYTES, decode_content=True)
                if not chunk:
                    break
                if self._stop.is_set():
                    return False
                pending += decoder.decode(chunk)
                *complete, pending = pending.split("\n")
                for line in complete:
                    if skip:
                        skip -= 1
                        continue
                    if frame.BEGIN in line:
                        # what the cell printed without a newline, then the frame
                        head = line[: line.index(frame.BEGIN)]
                        if head:
                            self._lines.put(head)
                        self.frame_seen = True
                        return True
                    self.received += 1
                    self._lines.put(line.rstrip("\r"))
        finally:
            self._resp = None
            resp.close()
        pending += decoder.decode(b"", final=True)
        self._partial = "" if skip else pending
        return True

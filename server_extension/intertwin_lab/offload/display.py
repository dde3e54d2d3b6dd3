"""What a waiting batch cell shows in its notebook cell.

With a widget front end (JupyterLab's widget manager): an ipywidgets box with the job's state
in the site's words (the service's ``sentence``: *queued at Vega (batch job 1001)*, *running on
vega-vk*), the time elapsed, a live tail of the cell's log and a **Cancel** button. Without one
(nbclient, a console, a plain kernel client): the same status line as text, kept in place with
``update_display``, and the cell's lines printed as they come. Never both.

A front end that renders widgets is known by the control comm its widget manager opens when it
connects to the kernel (``jupyter.widget.control``, ipywidgets' protocol:
https://github.com/jupyter-widgets/ipywidgets/blob/main/packages/schema/messages.md); nbclient
and plain kernel clients open none. The extension registers that comm target itself at kernel
start, so the comm is accepted without importing ipywidgets until a front end asks for it.
"""

from __future__ import annotations

import html
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from IPython.display import display

from intertwin_hub.status import FINAL

CONTROL_TARGET = "jupyter.widget.control"
# the lines the widget's log keeps (it scrolls; the whole log stays in the Jobs panel)
LOG_LINES = 500
_COLOURS = {
    "pending": "#757575",
    "submitted": "#757575",
    "queued": "#ef6c00",
    "preparing": "#ef6c00",
    "running": "#1565c0",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#616161",
    "lost": "#c62828",
}


def watch_widget_frontends(shell: Any) -> None:
    """Accept a widget manager's control comm from kernel start on (before ipywidgets is
    imported, whose own targets replace this one when it is)."""
    manager = getattr(getattr(shell, "kernel", None), "comm_manager", None)
    if manager is None or CONTROL_TARGET in getattr(manager, "targets", {}):
        return
    manager.register_target(CONTROL_TARGET, _control_comm_opened)


def _control_comm_opened(comm: Any, msg: dict[str, Any]) -> None:
    from ipywidgets import Widget  # its import registers its own comm targets

    Widget.handle_control_comm_opened(comm, msg)


def widget_frontend() -> bool:
    """Whether a front end that renders widgets is connected to this kernel: its widget
    manager opened ipywidgets' control comm (ipywidgets keeps it as ``Widget._control_comm``)."""
    if "ipywidgets" not in sys.modules:
        return False
    from ipywidgets import Widget

    return getattr(Widget, "_control_comm", None) is not None


def elapsed_text(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def said(job: dict[str, Any]) -> str:
    """The job's state in the site's words; at the end, the state with its batch job and
    exit code: ``succeeded (batch job 1001, exit code 0)``."""
    if job.get("state") not in FINAL:
        return str(job.get("sentence") or job.get("state") or "")
    facts = [f"batch job {job['batch_job']}" if job.get("batch_job") else ""]
    if job.get("exit_code") is not None:
        facts.append(f"exit code {job['exit_code']}")
    facts = [f for f in facts if f]
    return str(job.get("state")) + (f" ({', '.join(facts)})" if facts else "")


def status_line(job: dict[str, Any], seconds: float) -> str:
    """``Vega: queued at Vega (batch job 1001) · 12 s``, at the end ``Vega: succeeded
    (batch job 1001, exit code 0) · 40 s``."""
    return f"{job.get('site_name')}: {said(job)} · {int(seconds)} s"


class View(Protocol):
    def show(self, job: dict[str, Any], seconds: float) -> None: ...

    def lines(self, lines: list[str]) -> None: ...

    def finish(self, job: dict[str, Any], seconds: float, note: str | None = None) -> None: ...


class _Line:
    """One status line, shown as text (and kept in place with update_display)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class TextView:
    """The status line, updated in place; the cell's lines printed as they come."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._last = ""

    def show(self, job: dict[str, Any], seconds: float) -> None:
        line = status_line(job, seconds)
        if self._handle is None:
            self._handle = display(_Line(line), display_id=True)
        elif line != self._last:
            self._handle.update(_Line(line))
        self._last = line

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            print(line, flush=True)

    def finish(self, job: dict[str, Any], seconds: float, note: str | None = None) -> None:
        self.show(job, seconds)


class WidgetView:
    """State badge, elapsed time, Cancel, and the log's last lines (scrollable)."""

    def __init__(self, job: dict[str, Any], on_cancel: Callable[[], None] | None) -> None:
        import ipywidgets as w

        self._job = job
        self._tail: deque[str] = deque(maxlen=LOG_LINES)
        self.badge = w.HTML()
        self.elapsed = w.Label()
        self.note = w.HTML()
        self.cancel = w.Button(
            description="Cancel",
            icon="stop",
            button_style="danger",
            tooltip=f"Cancel the batch cell {job.get('id')} at {job.get('site_name')}",
        )
        self.cancel.add_class("itw-offload-cancel")
        if on_cancel is None:
            # the kernel handles a click only once the cell ends (a cell run without await)
            self.cancel.disabled = True
            self.cancel.tooltip = "Interrupt the kernel to cancel this batch cell"
        else:

            def clicked(_: Any) -> None:
                self.cancel.disabled = True
                self.cancel.description = "Cancelling…"
                on_cancel()

            self.cancel.on_click(clicked)
        self.log = w.HTML()
        self.log.add_class("itw-offload-log")
        head = w.HBox(
            [self.badge, self.elapsed, self.cancel],
            layout=w.Layout(align_items="center", grid_gap="0 1em"),
        )
        self.box = w.VBox([head, self.note, self.log])
        self.box.add_class("itw-offload")
        self._render_log()
        display(self.box)

    def show(self, job: dict[str, Any], seconds: float) -> None:
        self._job = job
        state = str(job.get("state") or "")
        colour = _COLOURS.get(state, "#757575")
        value = (
            f'<span class="itw-offload-state" data-state="{html.escape(state)}" '
            f'data-job="{html.escape(str(job.get("id") or ""))}">'
            f'<span style="color:{colour}">●</span> '
            f"<b>{html.escape(str(job.get('site_name') or job.get('site') or ''))}</b>: "
            f"{html.escape(said(job))}</span>"
        )
        if self.badge.value != value:
            self.badge.value = value
        text = elapsed_text(seconds)
        if self.elapsed.value != text:
            self.elapsed.value = text
        note = job.get("note") or ""
        value = f'<span style="color:#ef6c00">{html.escape(note)}</span>' if note else ""
        if self.note.value != value:
            self.note.value = value

    def lines(self, lines: list[str]) -> None:
        if lines:
            self._tail.extend(lines)
            self._render_log()

    def _render_log(self) -> None:
        body = (
            html.escape("\n".join(self._tail))
            if self._tail
            else '<span style="color:#757575">(nothing printed yet)</span>'
        )
        # column-reverse keeps the box scrolled to its newest line
        self.log.value = (
            '<div style="display:flex;flex-direction:column-reverse;max-height:16em;'
            'overflow:auto"><pre style="margin:0;white-space:pre-wrap">'
            f"{body}</pre></div>"
        )

    def finish(self, job: dict[str, Any], seconds: float, note: str | None = None) -> None:
        self.show(job, seconds)
        self.cancel.disabled = True
        self.cancel.layout.display = "none"
        if note:
            self.note.value = f"<span>{html.escape(note)}</span>"


def make_view(job: dict[str, Any], on_cancel: Callable[[], None] | None) -> View:
    """The widget when a widget front end is connected, else the text."""
    if widget_frontend():
        return WidgetView(job, on_cancel)
    return TextView()


class Clock:
    """Seconds since the job was submitted (the service's time), or since the wait began."""

    def __init__(self, job: dict[str, Any]) -> None:
        self._t0 = time.monotonic()
        self._offset = 0.0
        try:
            submitted = datetime.fromisoformat(str(job.get("submitted")))
            ago = time.time() - submitted.timestamp()
            if ago >= 0:
                self._offset = ago
        except ValueError:
            pass

    def __call__(self) -> float:
        return self._offset + time.monotonic() - self._t0

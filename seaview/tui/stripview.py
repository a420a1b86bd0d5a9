"""A scrollable view of one Rich renderable, rendered once to lines and drawn line by line.

A Static holding a long Group of Panels is rendered in full to measure its height and again
to paint it, on every update. Here the renderable is rendered once per (content, width) into
strips; painting and scrolling then only crop the lines on screen.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class StripView(ScrollView, can_focus=False):
    """Shows ``renderable`` (set with :meth:`update`), wrapped to the widget's width."""

    DEFAULT_CSS = "StripView { height: 1fr; overflow-x: hidden; overflow-y: scroll; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._renderable: RenderableType = ""
        self._strips: list[Strip] = []
        self._width = 0

    def update(self, renderable: RenderableType, *, home: bool = True) -> None:
        """Show ``renderable``; ``home`` scrolls back to its first line."""
        self._renderable = renderable
        self._width = 0  # forces _layout to render the new content
        if home and self.scroll_offset != (0, 0):
            self.scroll_to(0, 0, animate=False)
        self._layout(self.scrollable_content_region.width)
        self.refresh()

    def _layout(self, width: int) -> None:
        if width <= 0 or width == self._width:
            return
        console = self.app.console
        options = console.options.update_width(width).update(highlight=False)
        lines = console.render_lines(self._renderable, options, pad=False)
        self._strips = [Strip(Segment.adjust_line_length(line, width), width) for line in lines]
        self._width = width
        self.virtual_size = Size(width, len(self._strips))

    def on_resize(self) -> None:
        self._layout(self.scrollable_content_region.width)

    def render_line(self, y: int) -> Strip:
        self._layout(self.scrollable_content_region.width)
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.scrollable_content_region.width
        if i >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        return self._strips[i].crop_extend(scroll_x, scroll_x + width, self.rich_style)

"""The help screen: every key, loaded with the app (it imports nothing but Textual)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
seaview keys

  runs        Enter open · space mark · d diff marked runs · q quit
  episodes    Enter steps · f filter outcome (or the tasks some attempts resolved and some not) · s sort · n/p page
              / search steps · t pick by id
              c the episode beside another attempt at its task (the other outcome where there is one)
  diff        Enter on a flipped task, or one whose success rate changed: its trajectories side by side
              (n next difference · j/k move · q back)
  steps       h/l step · H/L episode · 0/$ first/last · j/k scroll (overview: move, Enter open) · x fold
              v overview · i problem statement · p submitted patch · e $EDITOR · q back
  heads       arrows/hjkl head · m metric · w/a/s/d tile · r exact slice from stored q/k · z zoom (values)
  dynamics    [ ] training step · m metric · arrows/hjkl head (runs probed during training)
  kv          [ ] layer
  lengths     m next 6 models · l log / linear length axis · s sort prompts
  tabs        1-5 show the n-th tab · click a tab · or focus the tab bar (shift+Tab) and ←/→
  everywhere  ? help · ctrl+p command palette · q back/quit · mouse works · steps are numbered from 1
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

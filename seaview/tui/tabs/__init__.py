"""The tabs of a run, one module each; every tab loads its data in a worker when first shown."""

from .dynamics import DynamicsPane
from .episodes import EpisodesPane
from .heads import HeadsPane
from .kv import KVPane
from .lengths import LengthsPane

__all__ = ["DynamicsPane", "EpisodesPane", "HeadsPane", "KVPane", "LengthsPane"]

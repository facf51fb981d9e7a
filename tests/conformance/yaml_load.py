"""YAML loading for OpenAI's OpenAPI documents, which redefine anchors.

The 2024 documents define `&run_temperature_description` (and `&run_top_p_description`) twice. YAML allows that
(an alias refers to the latest node with its anchor), PyYAML refuses it ("found duplicate anchor"). The composer
below forgets the earlier node just before a redefinition, so the document loads with YAML's meaning. It rides on
libyaml's parser when PyYAML was built with it: the newest document (3 MB) loads in about 5 s instead of 14."""

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import Node
from yaml.resolver import Resolver


class _RedefinableAnchors(Composer):
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if not isinstance(event, AliasEvent) and getattr(event, "anchor", None) is not None:
            self.anchors.pop(event.anchor, None)
        return super().compose_node(parent, index)


class PureLoader(_RedefinableAnchors, yaml.SafeLoader):
    pass


Loader: type = PureLoader
try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    pass
else:
    class LibyamlLoader(_RedefinableAnchors, CParser, SafeConstructor, Resolver):
        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            _RedefinableAnchors.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    Loader = LibyamlLoader


def load(path: Path, loader: type | None = None) -> Any:
    with path.open("rb") as f:
        return yaml.load(f, Loader=loader or Loader)  # SafeConstructor: yaml.safe_load's

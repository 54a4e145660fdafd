"""Refuses a YAML file with a key repeated in one mapping: PyYAML (and so the validators) keep
the last silently, while the server's parser (Yams) refuses the whole document.
Usage: no_duplicate_keys.py FILE"""
import sys

import yaml


class StrictLoader(yaml.SafeLoader):
    pass


def construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise SystemExit(f"{sys.argv[1]}:{key_node.start_mark.line + 1}: key {key!r} repeated "
                             f"(first at line {seen[key]})")
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
with open(sys.argv[1]) as f:
    yaml.load(f, StrictLoader)
print(f"{sys.argv[1]}: no key repeated in any mapping")

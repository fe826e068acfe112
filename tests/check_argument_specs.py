#!/usr/bin/env python3
"""Every role's defaults/main.yml keys must equal its meta/argument_specs.yml options, and
every variable must carry the role's name as prefix."""
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
errors = []
for role in sorted(p for p in (root / "roles").iterdir() if p.is_dir()):
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
    spec_file = role / "meta/argument_specs.yml"
    if not spec_file.exists():
        errors.append(f"{role.name}: meta/argument_specs.yml is missing")
        continue
    options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"].get("options", {})
    for key in sorted(set(defaults) - set(options)):
        errors.append(f"{role.name}: default {key} is not in meta/argument_specs.yml")
    for key in sorted(set(options) - set(defaults)):
        if options[key].get("required"):
            continue
        errors.append(f"{role.name}: option {key} has no default in defaults/main.yml")
    for key in sorted(defaults):
        if not key.startswith(role.name + "_"):
            errors.append(f"{role.name}: variable {key} does not start with '{role.name}_'")
    print(f"{role.name}: {len(defaults)} defaults, {len(options)} documented options")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("argument specs: OK")

"""Packaged training presets (YAML): `mdrl train --preset <name>`; list them with `--list-presets`."""

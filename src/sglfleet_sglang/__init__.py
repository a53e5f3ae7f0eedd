"""The SGLang contract: what sglfleet relies on of the SGLang release it pins, in one package.

- `SGLANG_VERSION`: the release the roles install and every table here was read from;
- `catalog`: its server flags, dumped from SGLang's own parser (`tools/dump_sglang_flags.py`), and
  an argparse parser rebuilt from them;
- `config_file`: its `--config FILE` semantics;
- `ports`: the port block a serving group binds.

Used by the controller (plan, validation, config files) and by the rehearsal engine on lab nodes
alike; standard library and PyYAML only, so that it ships to nodes in the engine's zip.
"""

SGLANG_VERSION = "0.5.23"

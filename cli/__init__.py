"""The `vinpaint` command: one module per sub-command (`commands_<name>`), parsing arguments into a config and
handing over to the part that does the work."""

"""CLI commands, one module each. They parse options, call the library and print a short summary."""

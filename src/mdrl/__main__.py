from mdrl.cli import app

app(prog_name="mdrl")
